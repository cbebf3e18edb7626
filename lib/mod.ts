/**
 * docker-image-pusher as a library: push an image archive (docker save, skopeo/podman
 * docker-archive, OCI layout; plain, gzip or zstd) to a container registry without a Docker
 * daemon, or an image straight from a containerd content store (`containerdRoot`); pull images
 * from registries into such an archive ({@link pull}); copy an image from one registry to another
 * ({@link copy}); mirror a list of images under one prefix ({@link sync}); push every image of a
 * bundle under a prefix ({@link pushAll}); or use its readers and registry client on their own.
 *
 * Each {@link push}, {@link pull}, {@link copy}, {@link sync} and {@link pushAll} call owns its
 * resources — compression workers, connections, the secrets it must keep out of logs (a
 * {@link Redactor}) — so several may run at once in one process. {@link Credentials} is the one
 * credentials type: pass it in {@link PushOptions.credentials} or to a {@link RegistryClient};
 * without it, docker/podman config files and credential helpers are consulted.
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
 * @example Two pushes at once, one with a password, one with an identity token
 * ```ts
 * import { DEFAULT_PUSH_SETTINGS, push, type PushOptions } from "./mod.ts";
 *
 * const common = {
 *   ...DEFAULT_PUSH_SETTINGS,
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 *   forceUpload: false,
 *   noCache: false,
 * };
 * const api: PushOptions = {
 *   ...common,
 *   file: "api.tar",
 *   targets: ["registry.example/team/api:1.0"],
 *   credentials: { username: "ci", password: Deno.env.get("REGISTRY_PASSWORD") ?? "" },
 * };
 * const web: PushOptions = {
 *   ...common,
 *   file: "web.tar",
 *   targets: ["acr.example.io/team/web:1.0"],
 *   credentials: { identityToken: Deno.env.get("ACR_REFRESH_TOKEN") ?? "" },
 * };
 * const [first, second] = await Promise.all([push(api), push(web)]);
 * console.log(first.digest, second.digest);
 * ```
 *
 * @example Copy an image between registries, keeping its digest
 * ```ts
 * import { copy } from "./mod.ts";
 *
 * const result = await copy({
 *   source: "registry.example.com/team/app:1.0",
 *   target: "localhost:5000/mirror/app:1.0",
 *   platforms: [],
 *   timeoutSeconds: 600,
 *   stallTimeoutSeconds: 60,
 *   maxConcurrent: 4,
 *   retryAttempts: 3,
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 * });
 * console.log(`${result.digest}: ${result.bytesSent} bytes sent`);
 * ```
 *
 * @example Pull two images into one archive
 * ```ts
 * import { DEFAULT_PUSH_SETTINGS, pull } from "./mod.ts";
 *
 * const result = await pull({
 *   ...DEFAULT_PUSH_SETTINGS,
 *   sources: ["localhost:5000/team/app:1.0", "localhost:5000/team/db:2"],
 *   output: "images.tar",
 *   platforms: ["linux/amd64"],
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 * });
 * for (const image of result.images) console.log(image.source, image.digest);
 * ```
 *
 * @example Mirror a list of images (registry references and archives) under one prefix
 * ```ts
 * import { DEFAULT_SYNC_SETTINGS, sync, syncExitCode } from "./mod.ts";
 *
 * // images.txt:  docker.io/library/nginx:1.27
 * //              --platform=linux/amd64 ghcr.io/org/tool:2
 * //              ./app.tar => registry.example.com/team/app:1.0
 * const result = await sync({
 *   ...DEFAULT_SYNC_SETTINGS,
 *   from: "images.txt",
 *   to: "registry.example.com/mirror",
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 *   noCache: false,
 * }, { events: (event) => event.type === "sync" && console.log(event.line, event.status) });
 * Deno.exitCode = syncExitCode(result);
 * ```
 *
 * @example Push every image of a bundle (`pull --from LIST` wrote it) under a prefix
 * ```ts
 * import { bundleExitCode, DEFAULT_PUSH_SETTINGS, pushAll } from "./mod.ts";
 *
 * const result = await pushAll({
 *   ...DEFAULT_PUSH_SETTINGS,
 *   file: "bundle.tar",
 *   prefix: "registry.internal:5000/mirror",
 *   flatten: false,
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 *   forceUpload: false,
 *   noCache: false,
 * });
 * for (const image of result.images) console.log(image.status, image.digestReferences);
 * Deno.exitCode = bundleExitCode(result);
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
 * @example List the images an archive holds (what `docker-image-pusher ls` shows)
 * ```ts
 * import { listArchiveImages } from "./mod.ts";
 *
 * for (const image of await listArchiveImages("images.tar.zst")) {
 *   console.log(image.names.join(","), image.platforms.join(","), image.digest, image.size);
 * }
 * ```
 *
 * @example List the images of a containerd store (read-only, also while containerd runs)
 * ```ts
 * import { listContainerdImages, openContainerdStore } from "./mod.ts";
 *
 * const store = await openContainerdStore("/var/lib/containerd", { namespace: "k8s.io" });
 * for (const image of await listContainerdImages(store)) {
 *   console.log(image.names.join(","), image.digest, image.platforms.join(","));
 * }
 * ```
 *
 * @module
 */

export { push, type PushResult, type PushRuntime } from "./push/push.ts";
export {
  type AttestationPolicy,
  DEFAULT_PUSH_SETTINGS,
  type ManifestFormat,
  type OutputMode,
  type PushOptions,
  type TransferSettings,
} from "./options.ts";
export { Redactor, redactUrl, SHOWN_QUERY_PARAMETERS } from "./logging/redact.ts";
export { copy, type CopyHooks, type CopyResult } from "./copy/copy.ts";
export { type LineOutcome, sync, syncExitCode, type SyncResult } from "./sync/sync.ts";
export { DEFAULT_SYNC_SETTINGS, type SyncOptions } from "./sync/options.ts";
export { checkPrefix, mirrorTarget, type TargetNaming } from "./sync/target_name.ts";
export { type BlobClaim, BlobClaims } from "./transfer/blob_claims.ts";
export type { RunHooks, WriteResult } from "./transfer/run.ts";
export type { CopyOptions } from "./copy/options.ts";
export { pull, type PullResult } from "./pull/pull.ts";
export {
  type BlobReader,
  fetchBlob,
  type FetchBlobOptions,
  type FetchedBlob,
} from "./pull/blob_fetch.ts";
export type { RetryInfo, RetryPolicy } from "./transfer/retry.ts";
export type { Clock } from "./transfer/stall.ts";
export {
  bundleExitCode,
  type BundleImageOutcome,
  type BundlePushResult,
  pushAll,
} from "./bundle/push_all.ts";
export { type BundlePushOptions, DEFAULT_PARALLEL_IMAGES } from "./bundle/options.ts";
export { OMITTED_LAYERS_FILE, type OmittedLayer } from "./image/omitted_layers.ts";
export type { PullOptions } from "./pull/options.ts";
export {
  type ErrorKind,
  EXIT_CODES,
  PusherError,
  type PusherErrorOptions,
  toPusherError,
} from "./errors.ts";
export type {
  BlobInfo,
  BlobState,
  EventBody,
  EventSink,
  PulledImage,
  PushEvent,
  SyncLinePlan,
  SyncLineReport,
  SyncLineStatus,
} from "./logging/events.ts";
export {
  type ArchiveSource,
  type ContainerdImageRecord,
  type ContainerdStore,
  type ContainerdStoreOptions,
  type ImageSummary,
  type LargeEntryHandler,
  type LayoutOptions,
  listArchiveImages,
  listContainerdImages,
  openArchive,
  openContainerdStore,
  openRandomAccessArchive,
  type RandomAccessArchive,
  resolveContainerdImage,
  resolveLayout,
  scanArchiveStream,
  type StreamScanOptions,
  type StreamScanResult,
} from "./image/mod.ts";
export type {
  ArchiveImage,
  ArchiveLayer,
  EntryView,
  ImageSelection,
  RawDocument,
} from "./image/types.ts";
export type { Compression, ManifestFamily } from "./oci/media_types.ts";
export type { Platform } from "./oci/platform.ts";
export type { Descriptor } from "./oci/descriptor.ts";
export {
  type BlobDownload,
  type BlobStatus,
  type FetchedManifest,
  type GetBlobOptions,
  type ManifestHead,
  RegistryClient,
  type RegistryClientOptions,
  type RepositoryAccess,
  type UploadSession,
} from "./registry/client.ts";
export { ClientPool, type ClientPoolOptions, type RealmStore } from "./registry/client_pool.ts";
export type { TlsSettings } from "./registry/connect.ts";
export type { RateLimit } from "./registry/rate_limit.ts";
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
} from "./credentials/credentials.ts";
export { VERSION } from "./version.ts";
