import { startHttpRecorder, type HttpRecorder, type RecordedCall } from './http-recorder.ts';

export interface FakePull {
  number: number;
  sha: string;
  labels: string[];
}

export interface StatusCall {
  repo: string;
  sha: string;
  state: string;
  context: string;
  description: string;
  target_url?: string;
}

/**
 * A local stand-in for the GitHub REST API parts the release freeze uses: open pull requests,
 * commit statuses and deployment protection rule callbacks. Records every call; fails on demand.
 */
export class FakeGitHub {
  readonly pulls = new Map<string, FakePull[]>();
  /** Latest status per repo@sha, as GitHub would show it. */
  readonly statuses = new Map<string, StatusCall>();
  /** Every status GitHub accepted, in order. */
  readonly statusHistory: StatusCall[] = [];
  readonly reviews: Array<{ path: string; environment_name: string; state: string; comment: string }> = [];
  private failures = 0;
  private failStatus = 500;
  /** Calls still to let through before the one armed by failNth fails. */
  private failAfter: number | null = null;
  private constructor(private readonly recorder: HttpRecorder) {}

  static async start(): Promise<FakeGitHub> {
    let fake: FakeGitHub | undefined;
    const recorder = await startHttpRecorder((call) => fake!.answer(call));
    fake = new FakeGitHub(recorder);
    return fake;
  }

  get url(): string {
    return this.recorder.url;
  }

  get calls(): RecordedCall[] {
    return this.recorder.calls;
  }

  failNext(times: number, status = 500): void {
    this.failures = times;
    this.failStatus = status;
  }

  /** The n-th call from now (1 = the next one) fails once with `status`; the others pass. */
  failNth(n: number, status = 500): void {
    this.failAfter = n - 1;
    this.failStatus = status;
  }

  status(repo: string, sha: string): StatusCall | undefined {
    return this.statuses.get(`${repo}@${sha}`);
  }

  close(): Promise<void> {
    return this.recorder.close();
  }

  private answer(call: RecordedCall) {
    if (call.headers.authorization !== 'token ghp_test_token')
      return { status: 401, body: { message: 'Bad credentials' } };
    if (this.failures > 0) {
      this.failures--;
      return { status: this.failStatus, body: { message: 'Server Error' } };
    }
    if (this.failAfter !== null) {
      if (this.failAfter === 0) {
        this.failAfter = null;
        return { status: this.failStatus, body: { message: 'Server Error' } };
      }
      this.failAfter--;
    }
    const url = new URL(call.path, 'http://fake');
    const pulls = /^\/repos\/([^/]+\/[^/]+)\/pulls$/.exec(url.pathname);
    if (pulls && call.method === 'GET') {
      const page = Number(url.searchParams.get('page') ?? '1');
      const perPage = Number(url.searchParams.get('per_page') ?? '30');
      const all = this.pulls.get(pulls[1]!) ?? [];
      const slice = all.slice((page - 1) * perPage, page * perPage);
      const headers: Record<string, string> = {};
      if (page * perPage < all.length)
        headers.link = `<${this.url}${url.pathname}?state=open&per_page=${perPage}&page=${page + 1}>; rel="next"`;
      return {
        status: 200,
        headers,
        body: slice.map((p) => ({
          number: p.number,
          state: 'open',
          head: { sha: p.sha },
          labels: p.labels.map((name) => ({ name })),
        })),
      };
    }
    const status = /^\/repos\/([^/]+\/[^/]+)\/statuses\/([0-9a-f]+)$/.exec(url.pathname);
    if (status && call.method === 'POST') {
      const body = call.json as Omit<StatusCall, 'repo' | 'sha'>;
      const recorded = { repo: status[1]!, sha: status[2]!, ...body };
      this.statuses.set(`${recorded.repo}@${recorded.sha}`, recorded);
      this.statusHistory.push(recorded);
      return { status: 201, body: { id: this.statuses.size, ...recorded } };
    }
    if (/\/deployment_protection_rule$/.test(url.pathname) && call.method === 'POST') {
      const body = call.json as { environment_name: string; state: string; comment: string };
      this.reviews.push({ path: url.pathname, ...body });
      return { status: 204 };
    }
    return { status: 404, body: { message: 'Not Found' } };
  }
}
