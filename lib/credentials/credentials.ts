/**
 * The one credentials type of the tool: a user name and password (or a registry token used as
 * one), an identity/refresh token as docker config files and credential helpers hand out, or
 * none. The library API takes it, the resolver (flags, env, config files, helpers) returns it and
 * the registry client authenticates with it.
 *
 * @module
 */

/** A user name and password; also ECR (`AWS` + token) and GCR (`oauth2accesstoken` + token). */
export interface PasswordCredentials {
  /** User name, e.g. `robot$project+name`. */
  username: string;
  /** Password or access token. Never logged. */
  password: string;
}

/** An OAuth2 refresh token (docker config `identitytoken`), e.g. ACR's. */
export interface IdentityTokenCredentials {
  /** The refresh token. Never logged. */
  identityToken: string;
  /** User name sent with it where Basic auth is needed (ACR: `00000000-0000-…`). */
  username?: string;
}

/** No credentials: anonymous tokens only. */
export interface AnonymousCredentials {
  /** Marks the anonymous case. */
  anonymous: true;
}

/** Credentials for one registry. */
export type Credentials = PasswordCredentials | IdentityTokenCredentials | AnonymousCredentials;

/** The anonymous credentials. */
export const ANONYMOUS: AnonymousCredentials = Object.freeze({ anonymous: true });

/** The secrets the credentials hold (password or identity token), for redaction. */
export function secretsOf(credentials: Credentials): string[] {
  if ("password" in credentials) return [credentials.password];
  if ("identityToken" in credentials) return [credentials.identityToken];
  return [];
}

/** The user name the credentials carry, if any (safe to show). */
export function usernameOf(credentials: Credentials): string | undefined {
  return "username" in credentials ? credentials.username : undefined;
}

/**
 * The `Authorization: Basic …` value for the credentials, or `undefined` when they hold no
 * user-name/secret pair (anonymous, or an identity token without a user name).
 */
export function basicAuthorization(credentials: Credentials): string | undefined {
  if ("password" in credentials) return encodeBasic(credentials.username, credentials.password);
  if ("identityToken" in credentials && credentials.username !== undefined) {
    return encodeBasic(credentials.username, credentials.identityToken);
  }
  return undefined;
}

function encodeBasic(username: string, secret: string): string {
  const bytes = new TextEncoder().encode(`${username}:${secret}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}
