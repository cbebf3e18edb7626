/**
 * docker-image-pusher as a library: push an image archive (docker save, skopeo/podman
 * docker-archive, OCI layout; plain, gzip or zstd) to a container registry without a Docker
 * daemon, or use its archive readers and registry client on their own.
 *
 * @example Push an archive and print the manifest digest
 * ```ts
 * import { DEFAULT_PUSH_SETTINGS, push } from "./mod.ts";
 *
 * const result = await push({
 *   ...DEFAULT_PUSH_SETTINGS,
 *   file: "app.tar",
 *   targets: ["localhost:5000/team/app:1.0"],
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 *   forceUpload: false,
 *   noCache: false,
 * }, { events: (event) => console.error(event.type) });
 * console.log(`${result.repository}@${result.digest}`);
 * ```
 *
 * @example Read an archive without pushing it
 * ```ts
 * import { openRandomAccessArchive, resolveLayout } from "./mod.ts";
 *
 * const archive = await openRandomAccessArchive("app.tar");
 * const selection = await resolveLayout(archive, {});
 * for (const image of selection.images) console.log(image.names, image.layers.length);
 * ```
 *
 * @module
 */

export { push, type PushResult, type PushRuntime } from "./push.ts";
export {
  DEFAULT_PUSH_SETTINGS,
  type ExplicitCredentials,
  type OutputMode,
  type PushOptions,
} from "./options.ts";
export {
  type ErrorKind,
  EXIT_CODES,
  PusherError,
  type PusherErrorOptions,
  toPusherError,
} from "./errors.ts";
export type { BlobInfo, BlobState, EventSink, PushEvent } from "./logging/events.ts";
export {
  type ArchiveSource,
  type LargeEntryHandler,
  type LayoutOptions,
  openArchive,
  openRandomAccessArchive,
  type RandomAccessArchive,
  resolveLayout,
  scanArchiveStream,
  type StreamScanOptions,
  type StreamScanResult,
} from "./image/mod.ts";
export type {
  ArchiveImage,
  ArchiveLayer,
  Compression,
  EntryView,
  ImageSelection,
  ManifestFamily,
  Platform,
  RawDocument,
} from "./image/types.ts";
export {
  type BlobStatus,
  RegistryClient,
  type RegistryClientOptions,
  type UploadSession,
} from "./registry/client.ts";
export type { AuthScheme, BearerRealm } from "./registry/auth.ts";
export type {
  BodyFactory,
  RequestBody,
  RequestLog,
  Transport,
  TransportRequest,
  TransportResponse,
} from "./registry/http.ts";
export { formatReference, parseReference, type Reference } from "./registry/reference.ts";
export {
  ANONYMOUS,
  type AnonymousCredentials,
  type Credentials,
  type IdentityTokenCredentials,
  type PasswordCredentials,
} from "./registry/credentials.ts";
export { VERSION } from "./version.ts";
