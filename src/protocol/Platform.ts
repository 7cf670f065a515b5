/**
 * The local operating system and CPU in the two naming schemes updates use:
 * Omaha's (`<os platform="win" arch="x64">`) and Go's (`linux/amd64`, the
 * names of choria-style repositories and of Flatcar boards).
 */
import * as NodeOs from "node:os"

/** An operating system name as Node reports it (`process.platform`). */
export type NodePlatform = NodeJS.Platform

const omahaPlatforms: Partial<Record<NodePlatform, string>> = { win32: "win", darwin: "mac" }
const omahaArchs: Partial<Record<string, string>> = { ia32: "x86" }
const goPlatforms: Partial<Record<NodePlatform, string>> = { win32: "windows", sunos: "solaris" }
const goArchs: Partial<Record<string, string>> = {
  x64: "amd64",
  ia32: "386",
  mipsel: "mipsle",
  mips64el: "mips64le",
  ppc64: NodeOs.endianness() === "LE" ? "ppc64le" : "ppc64"
}

/** Omaha's name for an OS (`win`, `mac`, `linux`, ...). */
export const omahaPlatform = (platform: NodePlatform = process.platform): string =>
  omahaPlatforms[platform] ?? platform

/** Omaha's name for a CPU architecture (`x86`, `x64`, `arm`, `arm64`, ...). */
export const omahaArch = (arch: string = process.arch): string => omahaArchs[arch] ?? arch

/** Go's name for an OS (`linux`, `darwin`, `windows`, ...). */
export const goOs = (platform: NodePlatform = process.platform): string => goPlatforms[platform] ?? platform

/** Go's name for a CPU architecture (`amd64`, `arm64`, `386`, `arm`, ...). */
export const goArch = (arch: string = process.arch): string => goArchs[arch] ?? arch

const knownGoArchs = new Set(["amd64", "arm64", "386", "arm", "ppc64le", "ppc64", "s390x", "riscv64", "loong64"])

/**
 * The Go architecture named by a Flatcar board (`amd64-usr` -> `amd64`), for
 * clients such as update_engine that send a board instead of `os@arch`.
 */
export const archFromBoard = (board: string): string | undefined => {
  const arch = board.split("-", 1)[0] ?? ""
  return knownGoArchs.has(arch) ? arch : undefined
}
