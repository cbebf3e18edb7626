/**
 * The system tools the test suite drives (a real registry, skopeo, …), and how to get them:
 * installed with apt when running as root, otherwise the exact command to run is printed.
 *
 * @module
 */

/** A command the tests need and the Debian package that provides it. */
export interface Requirement {
  /** Command looked up on PATH. */
  command: string;
  /** Debian package that installs it. */
  debianPackage: string;
}

/** Every tool the tests need. */
export const TEST_REQUIREMENTS: readonly Requirement[] = [
  { command: "docker-registry", debianPackage: "docker-registry" },
  { command: "skopeo", debianPackage: "skopeo" },
  { command: "podman", debianPackage: "podman" },
  { command: "containerd", debianPackage: "containerd" },
  { command: "nginx", debianPackage: "nginx-light" },
  { command: "htpasswd", debianPackage: "apache2-utils" },
  { command: "openssl", debianPackage: "openssl" },
  { command: "zstd", debianPackage: "zstd" },
  { command: "gzip", debianPackage: "gzip" },
  { command: "tmux", debianPackage: "tmux" },
  { command: "podman", debianPackage: "podman" },
  { command: "ctr", debianPackage: "containerd" },
];

/** Whether a command is on PATH. */
export async function hasCommand(command: string): Promise<boolean> {
  const result = await new Deno.Command("sh", {
    args: ["-c", `command -v ${command}`],
    stdout: "null",
    stderr: "null",
  }).output();
  return result.success;
}

async function run(command: string, args: string[]): Promise<boolean> {
  const child = new Deno.Command(command, {
    args,
    stdout: "inherit",
    stderr: "inherit",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  });
  return (await child.output()).success;
}

/** The requirements whose commands are missing. */
export async function missingRequirements(): Promise<Requirement[]> {
  const missing: Requirement[] = [];
  for (const requirement of TEST_REQUIREMENTS) {
    if (!(await hasCommand(requirement.command))) missing.push(requirement);
  }
  return missing;
}

/**
 * Installs missing tools with apt-get when running as root; otherwise returns the command the
 * user has to run. Returns undefined when everything is present.
 */
export async function ensureRequirements(log: (line: string) => void): Promise<string | undefined> {
  const missing = await missingRequirements();
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((requirement) => requirement.debianPackage))];
  const installCommand = `apt-get update && apt-get install -y ${packages.join(" ")}`;
  const isRoot = Deno.uid() === 0;
  if (!isRoot || !(await hasCommand("apt-get"))) {
    return `missing ${missing.map((requirement) => requirement.command).join(", ")}: run ` +
      `'sudo sh -c "${installCommand}"' (Debian/Ubuntu package names)`;
  }
  log(`installing ${packages.join(" ")} with apt-get …`);
  const ok = (await run("apt-get", ["update", "-qq"])) &&
    (await run("apt-get", ["install", "-y", "-qq", ...packages]));
  const still = await missingRequirements();
  if (!ok || still.length > 0) {
    return `could not install ${packages.join(" ")}; run '${installCommand}' by hand`;
  }
  return undefined;
}
