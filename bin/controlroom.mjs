#!/usr/bin/env -S node --max-semi-space-size=8
// The flag (also in `npm start` and the image's NODE_OPTIONS; cli/launch-flags.test.ts keeps them alike):
// a young generation of at most 8 MB, so each of V8's young-generation collections, which stop the HTTP
// event loop and every webhook answer in flight, is short (README, "The receiver, seventh pass").
// The CLI is TypeScript run through tsx, so there is no build step between a checkout and `npm start`.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
