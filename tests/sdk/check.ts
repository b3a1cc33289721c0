// The checks the TypeScript SDK programs share: a failed step throws, which ends the program
// with a non-zero status.

export function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`FAIL: ${what}`);
}

export function ok(step: string): void {
  console.log(`ok: ${step}`);
}

/** The api root and bearer token the programs are run with. */
export function args(): { root: string; token: string } {
  const [root, token] = process.argv.slice(2);
  if (!root || !token) throw new Error('usage: node PROGRAM.js <api-root> <bearer-token>');
  return { root, token };
}

export function unique(prefix: string): string {
  return `${prefix}-${Math.random().toString(16).slice(2, 14)}`;
}
