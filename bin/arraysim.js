#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step between clone and serve.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli.ts');
