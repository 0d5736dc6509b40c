import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import type { SharedConfig } from '../../core/config.ts';
import type { AlertingConfig } from '../config.ts';
import type { Pool } from '../../core/db.ts';
import { pullRequestVerdict, type FreezeDecision } from './state.ts';

export const STATUS_CONTEXT = 'controlroom/release-freeze';

export type GitHubConfig = Pick<
  AlertingConfig & SharedConfig,
  | 'GITHUB_API_URL'
  | 'GITHUB_TOKEN'
  | 'GITHUB_APP_ID'
  | 'GITHUB_APP_PRIVATE_KEY'
  | 'GITHUB_APP_INSTALLATION_ID'
  | 'GITHUB_REPOSITORIES'
  | 'FREEZE_EXCEPTION_LABELS'
  | 'CONTROLROOM_PUBLIC_URL'
>;

/** Octokit with a token, or as a GitHub App installation; null when GitHub is not configured. */
export function createGitHubClient(config: GitHubConfig): Octokit | null {
  const common = { baseUrl: config.GITHUB_API_URL, userAgent: 'controlroom-release-freeze', log: quietLog };
  if (config.GITHUB_APP_ID && config.GITHUB_APP_PRIVATE_KEY && config.GITHUB_APP_INSTALLATION_ID) {
    return new Octokit({
      ...common,
      authStrategy: createAppAuth,
      auth: {
        appId: config.GITHUB_APP_ID,
        privateKey: config.GITHUB_APP_PRIVATE_KEY.replace(/\\n/g, '\n'),
        installationId: config.GITHUB_APP_INSTALLATION_ID,
      },
    });
  }
  if (config.GITHUB_TOKEN) return new Octokit({ ...common, auth: config.GITHUB_TOKEN });
  return null;
}

const quietLog = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export const repositories = (config: GitHubConfig) =>
  (config.GITHUB_REPOSITORIES ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);

export const exceptionLabels = (config: GitHubConfig) =>
  config.FREEZE_EXCEPTION_LABELS.split(',')
    .map((l) => l.trim())
    .filter(Boolean);

export interface PullRequestRef {
  repo: string;
  number: number;
  sha: string;
  labels: string[];
}

/**
 * Keeps the `controlroom/release-freeze` commit status of pull request heads in line with the decision.
 * Each status GitHub accepted is recorded per head (controlroom.github_statuses) before the next head is
 * called, so a sync that fails part-way and is retried by the job queue calls GitHub only for the heads
 * that are still wrong: every status is set once.
 */
export class FreezeStatusPublisher {
  constructor(
    private readonly pool: Pool,
    private readonly github: Octokit,
    private readonly config: GitHubConfig
  ) {}

  async syncAll(decision: FreezeDecision): Promise<{ updated: number; unchanged: number }> {
    let updated = 0;
    let unchanged = 0;
    for (const full of repositories(this.config)) {
      const [owner, repo] = full.split('/') as [string, string];
      const pulls = await this.github.paginate(this.github.rest.pulls.list, {
        owner,
        repo,
        state: 'open',
        per_page: 100,
      });
      for (const pr of pulls) {
        const changed = await this.syncOne(decision, {
          repo: full,
          number: pr.number,
          sha: pr.head.sha,
          labels: pr.labels.map((l) => l.name ?? ''),
        });
        if (changed) updated++;
        else unchanged++;
      }
    }
    return { updated, unchanged };
  }

  /** Sets the status on one head if it differs from what we last set; returns whether GitHub was called. */
  async syncOne(decision: FreezeDecision, pr: PullRequestRef): Promise<boolean> {
    const verdict = pullRequestVerdict(decision, pr.labels, exceptionLabels(this.config));
    const known = await this.pool.query<{ state: string; description: string }>(
      `SELECT state, description FROM controlroom.github_statuses WHERE repo = $1 AND sha = $2`,
      [pr.repo, pr.sha]
    );
    const last = known.rows[0];
    if (last && last.state === verdict.state && last.description === verdict.description) return false;
    const [owner, repo] = pr.repo.split('/') as [string, string];
    await this.github.rest.repos.createCommitStatus({
      owner,
      repo,
      sha: pr.sha,
      state: verdict.state,
      context: STATUS_CONTEXT,
      description: verdict.description,
      ...(this.config.CONTROLROOM_PUBLIC_URL
        ? { target_url: `${this.config.CONTROLROOM_PUBLIC_URL.replace(/\/$/, '')}/api/freeze` }
        : {}),
    });
    await this.pool.query(
      `INSERT INTO controlroom.github_statuses (repo, sha, pr_number, state, description) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (repo, sha) DO UPDATE SET state = EXCLUDED.state, description = EXCLUDED.description, updated_at = now()`,
      [pr.repo, pr.sha, pr.number, verdict.state, verdict.description]
    );
    return true;
  }

  /** Answers a deployment protection rule: approved unless releases are frozen. */
  async reviewDeployment(
    decision: FreezeDecision,
    callbackUrl: string,
    environment: string
  ): Promise<'approved' | 'rejected'> {
    const state = decision.frozen ? 'rejected' : 'approved';
    await this.github.request({
      method: 'POST',
      url: callbackUrl,
      environment_name: environment,
      state,
      comment: decision.frozen
        ? `Release freeze: ${decision.reason}`.slice(0, 1000)
        : `Control Room: ${decision.reason}`,
    });
    return state;
  }
}
