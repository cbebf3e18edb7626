/**
 * The registry side of a push: target references, credentials, the HTTP transport and the
 * per-repository {@link RegistryClient}. Knows nothing of archives.
 *
 * @module
 */

export { Authorizer, type AuthorizerOptions, type AuthScheme, type AuthTicket } from "./auth.ts";
export { type CaCertificates, certsDirectories, loadCaCertificates } from "./ca_certs.ts";
export { type Challenge, challengeScopes, parseChallenges, resolveRealm } from "./challenge.ts";
export {
  type BlobStatus,
  MANIFEST_ACCEPT,
  RegistryClient,
  type RegistryClientOptions,
  type UploadSession,
} from "./client.ts";
export {
  ANONYMOUS,
  type AnonymousCredentials,
  basicAuthorization,
  type Credentials,
  type IdentityTokenCredentials,
  type PasswordCredentials,
  usernameOf,
} from "./credentials.ts";
export {
  type ErrorBodySummary,
  errorForStatus,
  hasErrorCode,
  isRetryable,
  needsChunkedUpload,
  parseErrorBody,
  parseRetryAfter,
  RegistryError,
  type RegistryErrorOptions,
  retryAfterOf,
} from "./errors.ts";
export type {
  BodyFactory,
  RequestBody,
  RequestLog,
  Transport,
  TransportRequest,
  TransportResponse,
} from "./http.ts";
export {
  DEFAULT_TAG,
  DOCKER_HUB_API_HOST,
  DOCKER_HUB_REGISTRY,
  formatReference,
  isValidRepository,
  isValidTag,
  parseReference,
  type Reference,
} from "./reference.ts";
export type { EnvReader } from "./proxy.ts";
export { redactUrl } from "./redact.ts";
export { createTransport, type TransportOptions, USER_AGENT } from "./transport.ts";
