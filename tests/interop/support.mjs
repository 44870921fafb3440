// What the Node interop scripts share: loading their packages, bounded waits, checks.

/** Imports `specifiers`, or prints the failure line (with the install step) and exits 3. */
export async function importOrExit(specifiers) {
  try {
    return await Promise.all(specifiers.map((s) => import(s)));
  } catch (e) {
    console.log(JSON.stringify({
      ok: false,
      error: `node packages missing (${e.message}); run \`npm ci\` in tests/interop`,
    }));
    process.exit(3);
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout(promise, what, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Throws `message` unless `cond`. */
export function expect(cond, message) {
  if (!cond) throw new Error(message);
}
