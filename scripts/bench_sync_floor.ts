/**
 * The floor of the sync benchmark: the protocol work a sync of the list needs, done by curl with
 * no tool of ours in the way, one `curl --parallel` per step so that curl's own start-up is paid
 * five times, not once per request. The steps: the manifest `HEAD`s of both sides of every image;
 * the manifest `GET` of each image whose digests differ; each of their blobs read from the source
 * (`GET`) beside an upload opened at the target (`POST`); each blob's closing `PUT`; each manifest
 * `PUT` under its tag. Nothing else: no registry check, no blob lookup, no token (the bench
 * registries ask for none). What a tool does beyond that, and its own start-up, is what
 * ours/floor and skopeo/floor show.
 *
 * @module
 */

import { join } from "node:path";
import type { BenchRegistry } from "./bench_process.ts";
import type { Sample } from "./bench_report.ts";

/** The manifest types the floor asks for (the bench images are single-platform). */
const MANIFEST_ACCEPT = "accept: application/vnd.oci.image.manifest.v1+json, " +
  "application/vnd.docker.distribution.manifest.v2+json";
/** The `-w` line of each transfer: its URL and the two headers the floor reads. */
const REPORT = "%{url_effective} %header{docker-content-digest} %header{location}\\n";

/** One image of the list: `repository:tag` at the source, `namespace/repository:tag` at the target. */
export interface FloorImage {
  /** Repository at the source, e.g. `bench/img-01`. */
  repository: string;
  /** Its tag. */
  tag: string;
}

/** Where the floor syncs from and to. */
export interface FloorJob {
  /** The source registry. */
  source: BenchRegistry;
  /** The target registry. */
  target: BenchRegistry;
  /** The namespace the images land under at the target, e.g. `mirror`. */
  namespace: string;
  /** The images. */
  images: readonly FloorImage[];
}

/** What a floor run did. */
export interface FloorOutcome {
  /** Its time (no process of ours: only curl's). */
  sample: Sample;
  /** Images copied. */
  copied: number;
}

/** What one transfer of a `curl --parallel` reported. */
interface Report {
  /** `Docker-Content-Digest`, or `""`. */
  digest: string;
  /** `Location`, or `""`. */
  location: string;
}

/**
 * Runs one curl with every transfer of `transfers` at once (each its own options, joined by
 * `--next`); returns what each reported, by URL. Throws with stderr when a `--fail` one failed.
 */
async function curlParallel(transfers: readonly string[][]): Promise<Map<string, Report[]>> {
  const args = [
    ...["--silent", "--show-error", "--parallel", "--parallel-max", String(transfers.length)],
    ...transfers.flatMap((transfer, index) => [
      ...(index > 0 ? ["--next"] : []),
      ...["--write-out", REPORT],
      ...transfer,
    ]),
  ];
  const output = await new Deno.Command("curl", { args, stdin: "null" }).output();
  if (!output.success) {
    throw new Error(`curl failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  const reports = new Map<string, Report[]>();
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    const [url, digest = "", location = ""] = line.trim().split(" ");
    if (url === undefined || url === "") continue;
    reports.set(url, [...reports.get(url) ?? [], { digest, location }]);
  }
  return reports;
}

/** A changed image as its manifest names it. */
interface ChangedImage {
  image: FloorImage;
  /** The manifest file. */
  manifestPath: string;
  mediaType: string;
  /** Digests of its config and layers. */
  blobs: string[];
}

/** Times the floor's sync of the job's images; copies only those whose digests differ. */
export async function timeCurlSync(job: FloorJob): Promise<FloorOutcome> {
  const dir = await Deno.makeTempDir({ prefix: "sync-floor-" });
  try {
    return await timedSync(job, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function timedSync(job: FloorJob, dir: string): Promise<FloorOutcome> {
  const sourceRepository = (image: FloorImage): string =>
    `${job.source.url}/v2/${image.repository}`;
  const targetRepository = (image: FloorImage): string =>
    `${job.target.url}/v2/${job.namespace}/${image.repository}`;
  const sourceManifest = (image: FloorImage): string =>
    `${sourceRepository(image)}/manifests/${image.tag}`;
  const targetManifest = (image: FloorImage): string =>
    `${targetRepository(image)}/manifests/${image.tag}`;
  const registries = [job.source, job.target];
  const cpu = async (): Promise<number> =>
    (await Promise.all(registries.map((registry) => registry.cpuSeconds())))
      .reduce((sum, seconds) => sum + seconds, 0);
  const registryBefore = await cpu();
  const started = performance.now();

  // 1. Both sides' manifest HEADs (a missing target tag answers 404 and no digest).
  const heads = await curlParallel(
    job.images.flatMap((image) => [sourceManifest(image), targetManifest(image)])
      .map((url) => ["--head", "--header", MANIFEST_ACCEPT, "--output", "/dev/null", url]),
  );
  const digestOf = (url: string): string => heads.get(url)?.[0]?.digest ?? "";
  const stale = job.images.filter((image) => {
    const digest = digestOf(sourceManifest(image));
    if (digest === "") throw new Error(`no digest for ${sourceManifest(image)}`);
    return digest !== digestOf(targetManifest(image));
  });
  if (stale.length > 0) await copyImages(job, dir, stale, sourceRepository, targetRepository);
  return {
    sample: {
      seconds: (performance.now() - started) / 1000,
      peakRss: 0,
      cpuSeconds: 0,
      registryCpuSeconds: (await cpu()) - registryBefore,
      writtenBytes: 0,
    },
    copied: stale.length,
  };
}

/** Steps 2–5 for the images whose digests differ. */
async function copyImages(
  job: FloorJob,
  dir: string,
  stale: readonly FloorImage[],
  sourceRepository: (image: FloorImage) => string,
  targetRepository: (image: FloorImage) => string,
): Promise<void> {
  const fileOf = (name: string): string => join(dir, name.replaceAll(/[/:]/g, "_"));
  // 2. Their manifests.
  await curlParallel(stale.map((image) => [
    ...["--fail", "--header", MANIFEST_ACCEPT, "--output", fileOf(`m-${image.repository}`)],
    `${sourceRepository(image)}/manifests/${image.tag}`,
  ]));
  const changed: ChangedImage[] = [];
  for (const image of stale) {
    const manifestPath = fileOf(`m-${image.repository}`);
    const manifest = JSON.parse(await Deno.readTextFile(manifestPath)) as {
      mediaType: string;
      config: { digest: string };
      layers: { digest: string }[];
    };
    const blobs = [manifest.config, ...manifest.layers].map((blob) => blob.digest);
    changed.push({ image, manifestPath, mediaType: manifest.mediaType, blobs });
  }
  // 3. Every blob read from the source beside an upload opened for it at the target.
  const uploadsUrl = (image: FloorImage): string => `${targetRepository(image)}/blobs/uploads/`;
  const opened = await curlParallel(
    changed.flatMap(({ image, blobs }) =>
      blobs.flatMap((digest) => [
        ["--fail", "--location", "--output", fileOf(`b-${digest}`)].concat(
          `${sourceRepository(image)}/blobs/${digest}`,
        ),
        ["--fail", "--request", "POST", "--output", "/dev/null", uploadsUrl(image)],
      ])
    ),
  );
  // 4. Each blob's closing PUT, in a session of its repository.
  const puts: string[][] = [];
  for (const { image, blobs } of changed) {
    const sessions = [...opened.get(uploadsUrl(image)) ?? []];
    for (const digest of blobs) {
      const session = sessions.pop();
      if (session === undefined || session.location === "") {
        throw new Error(`no upload session for ${digest}`);
      }
      const url = new URL(session.location, job.target.url);
      url.search += `${url.search === "" ? "?" : "&"}digest=${encodeURIComponent(digest)}`;
      puts.push([
        ...["--fail", "--request", "PUT", "--output", "/dev/null", "--header", "expect:"],
        ...["--header", "content-type: application/octet-stream"],
        ...["--data-binary", `@${fileOf(`b-${digest}`)}`, url.href],
      ]);
    }
  }
  await curlParallel(puts);
  // 5. The manifests under their tags.
  await curlParallel(changed.map(({ image, manifestPath, mediaType }) => [
    ...["--fail", "--request", "PUT", "--output", "/dev/null"],
    ...["--header", `content-type: ${mediaType}`, "--data-binary", `@${manifestPath}`],
    `${targetRepository(image)}/manifests/${image.tag}`,
  ]));
}
