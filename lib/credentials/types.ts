/**
 * Credentials for one registry, wherever they came from.
 *
 * @module
 */

/** What the tool authenticates with. */
export type RegistryCredentials =
  | { kind: "anonymous" }
  | { kind: "basic"; username: string; password: string; source: string }
  | { kind: "identity-token"; username: string; token: string; source: string };
