/**
 * Keeps secrets out of anything printed: Authorization headers, bearer tokens, passwords in URLs
 * and token-looking query parameters.
 *
 * @module
 */

const secrets = new Set<string>();

/** Registers a value (password, token) that must never be printed; it is masked from then on. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

/** Forgets every registered secret (tests). */
export function clearSecrets(): void {
  secrets.clear();
}

const PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/(authorization\s*[:=]\s*)(basic|bearer)\s+[^\s"',]+/gi, "$1$2 ***"],
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,}/gi, "$1 ***"],
  [/(\/\/[^/\s:@]+):[^@/\s]+@/g, "$1:***@"],
  [
    /([?&](?:access_token|token|password|refresh_token|_state|X-Amz-Signature|sig|signature)=)[^&\s"]+/gi,
    "$1***",
  ],
  [
    /("(?:token|access_token|refresh_token|password|identitytoken|auth|Secret)"\s*:\s*")[^"]*"/gi,
    '$1***"',
  ],
];

/** Masks every registered secret and every secret-shaped value in a text. */
export function redact(text: string): string {
  let result = text;
  for (const secret of secrets) result = result.replaceAll(secret, "***");
  for (const [pattern, replacement] of PATTERNS) result = result.replace(pattern, replacement);
  return result;
}
