/**
 * The containerd namespace read when none is named: a module of its own so the command line can
 * show it without loading the content store's reader.
 *
 * @module
 */

/** The namespace `ctr` and the containerd client use when none is given. */
export const DEFAULT_NAMESPACE = "default";
