/**
 * Safe ZIP extraction for downloaded projects (site ZIPs and GitHub archives), using fflate's
 * streaming inflater so that the unpacked size is counted as it is produced.
 *
 * The central directory is read here rather than by fflate because it alone tells symlinks and
 * other special files apart (the Unix mode in the external attributes), which fflate does not
 * expose. Every entry name is checked before anything is written: absolute names, backslashes,
 * NUL, empty, `.` and `..` segments make the whole archive fail, so nothing can land outside the
 * destination. Sizes are capped twice: declared sizes before unpacking, actual bytes while
 * unpacking (a header that lies about its size fails). Unpacking yields to the event loop every
 * few hundred kilobytes.
 *
 * @module
 */
import { Inflate } from "fflate";
import { dirname, join } from "node:path";

/** The archive is corrupt, unsafe or too large; the message says which entry and why. */
export class ZipError extends Error {
  override name = "ZipError";
}

/** What an entry is, from its Unix mode when the archive was made on Unix. */
export type EntryKind = "file" | "directory" | "symlink" | "special";

/** One entry of the central directory. */
export interface ZipEntry {
  readonly name: string;
  readonly kind: EntryKind;
  readonly method: number;
  readonly encrypted: boolean;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
  /** Permission bits when the archive was made on Unix. */
  readonly unixMode: number | undefined;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Lists the entries of a ZIP archive held in memory (ZIP64 included). */
export function listZipEntries(data: Uint8Array): ZipEntry[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number) => Number(view.getBigUint64(at, true));
  let eocd = -1;
  for (let at = data.length - 22; at >= Math.max(0, data.length - 22 - 65535); at--) {
    if (u32(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw new ZipError("not a ZIP archive");
  let count = u16(eocd + 10);
  let offset = u32(eocd + 16);
  if (
    (count === 0xffff || offset === 0xffffffff) && eocd >= 20 && u32(eocd - 20) === EOCD64_LOCATOR
  ) {
    const at = u64(eocd - 12);
    if (at + 56 > data.length || u32(at) !== EOCD64) throw new ZipError("corrupt ZIP64 record");
    count = u64(at + 32);
    offset = u64(at + 48);
  }
  const entries: ZipEntry[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > data.length || u32(at) !== CENTRAL) throw new ZipError("corrupt ZIP directory");
    const madeBy = u16(at + 4);
    const flags = u16(at + 8);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const commentLength = u16(at + 32);
    const external = u32(at + 38);
    const nameBytes = data.subarray(at + 46, at + 46 + nameLength);
    let name: string;
    try {
      name = decoder.decode(nameBytes);
    } catch {
      name = String.fromCharCode(...nameBytes);
    }
    let size = u32(at + 24);
    let compressedSize = u32(at + 20);
    let localOffset = u32(at + 42);
    const extraEnd = at + 46 + nameLength + extraLength;
    for (let x = at + 46 + nameLength; x + 4 <= extraEnd;) {
      const id = u16(x);
      const length = u16(x + 2);
      if (id === 0x0001) {
        let y = x + 4;
        if (size === 0xffffffff) size = u64((y += 8) - 8);
        if (compressedSize === 0xffffffff) compressedSize = u64((y += 8) - 8);
        if (localOffset === 0xffffffff) localOffset = u64(y);
      }
      x += 4 + length;
    }
    const unix = madeBy >> 8 === 3;
    const type = (external >>> 16) & 0o170000;
    let kind: EntryKind = name.endsWith("/") ? "directory" : "file";
    if (unix && type === 0o120000) kind = "symlink";
    else if (unix && type !== 0 && type !== 0o100000 && type !== 0o040000) kind = "special";
    entries.push({
      name,
      kind,
      method: u16(at + 10),
      encrypted: (flags & 1) !== 0,
      compressedSize,
      size,
      localOffset,
      unixMode: unix ? (external >>> 16) & 0o7777 : undefined,
    });
    at = extraEnd + commentLength;
  }
  return entries;
}

/** Whether an entry name stays inside the folder it is unpacked into. */
export function isSafeEntryName(name: string): boolean {
  if (name === "" || name.startsWith("/") || /[\\\0]/.test(name)) return false;
  const segments = (name.endsWith("/") ? name.slice(0, -1) : name).split("/");
  return segments.every((s) => s !== "" && s !== "." && s !== "..");
}

/** How `extractZip` treats the entries. */
export interface ExtractOptions {
  /** Largest total of unpacked bytes written. */
  readonly maxSize: number;
  /** Symlinks and special files: fail the archive, or leave them out (`onSkip` is told). */
  readonly symlinks: "refuse" | "skip";
  /** Maps an entry name to its path under the destination, or undefined to leave it out. */
  readonly select?: (name: string) => string | undefined;
  /** Whether a written file gets mode 0o775. */
  readonly executable: (path: string, entry: ZipEntry) => boolean;
  readonly onSkip?: (name: string, reason: string) => void;
  readonly signal?: AbortSignal | undefined;
}

/** What was unpacked. */
export interface ExtractResult {
  readonly files: number;
  readonly directories: number;
  readonly bytes: number;
}

/** Unpacks `data` under `dest` (created if needed), over any files already there. */
export async function extractZip(
  data: Uint8Array,
  dest: string,
  options: ExtractOptions,
): Promise<ExtractResult> {
  const entries = listZipEntries(data);
  const chosen: { entry: ZipEntry; path: string }[] = [];
  let declared = 0;
  for (const entry of entries) {
    if (!isSafeEntryName(entry.name)) {
      throw new ZipError(`unsafe entry name ${JSON.stringify(entry.name)}`);
    }
    const path = options.select ? options.select(entry.name) : entry.name;
    if (path === undefined || path === "" || path === "/") continue;
    if (!isSafeEntryName(path)) throw new ZipError(`unsafe entry name ${JSON.stringify(path)}`);
    if (entry.kind === "symlink" || entry.kind === "special") {
      if (options.symlinks === "refuse") {
        throw new ZipError(`${entry.kind} entries are not accepted: ${JSON.stringify(entry.name)}`);
      }
      options.onSkip?.(entry.name, entry.kind);
      continue;
    }
    if (entry.kind === "file") {
      if (entry.encrypted) throw new ZipError(`encrypted entry ${JSON.stringify(entry.name)}`);
      if (entry.method !== 0 && entry.method !== 8) {
        throw new ZipError(`unsupported compression in ${JSON.stringify(entry.name)}`);
      }
      declared += entry.size;
      if (declared > options.maxSize) {
        throw new ZipError(`unpacked size larger than ${options.maxSize} bytes`);
      }
    }
    chosen.push({ entry, path });
  }
  await Deno.mkdir(dest, { recursive: true });
  let bytes = 0;
  let files = 0;
  let directories = 0;
  for (const { entry, path } of chosen) {
    options.signal?.throwIfAborted();
    const target = join(dest, path);
    if (!target.startsWith(`${dest}/`)) throw new ZipError(`unsafe entry name ${path}`);
    if (entry.kind === "directory") {
      await conflicts(path, () => Deno.mkdir(target, { recursive: true }));
      directories++;
      continue;
    }
    const content = await inflateEntry(data, entry, options.maxSize - bytes, options.signal);
    bytes += content.length;
    await conflicts(path, async () => {
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.writeFile(target, content);
    });
    if (options.executable(path, entry)) await Deno.chmod(target, 0o775);
    files++;
  }
  return { files, directories, bytes };
}

/** Runs a write; a file where a folder is needed (or the reverse) is the archive's fault. */
async function conflicts(path: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (error) {
    if (
      error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotADirectory ||
      error instanceof Deno.errors.IsADirectory
    ) {
      throw new ZipError(`entry ${JSON.stringify(path)} conflicts with another`, { cause: error });
    }
    throw error;
  }
}

/** Input bytes handed to the inflater at once; bounds the output produced between checks. */
const STEP = 16 * 1024;
/** Yield to the event loop after this many steps. */
const STEPS_PER_YIELD = 16;

async function inflateEntry(
  data: Uint8Array,
  entry: ZipEntry,
  remaining: number,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const at = entry.localOffset;
  if (at + 30 > data.length || view.getUint32(at, true) !== LOCAL) {
    throw new ZipError(`corrupt entry ${JSON.stringify(entry.name)}`);
  }
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const end = start + entry.compressedSize;
  if (end > data.length) throw new ZipError(`truncated entry ${JSON.stringify(entry.name)}`);
  const compressed = data.subarray(start, end);
  const limit = Math.min(entry.size, remaining);
  if (entry.method === 0) {
    if (compressed.length !== entry.size) {
      throw new ZipError(`corrupt entry ${JSON.stringify(entry.name)}`);
    }
    return compressed;
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  const inflater = new Inflate((chunk) => {
    total += chunk.length;
    if (total > limit) {
      throw new ZipError(
        total > entry.size
          ? `entry ${JSON.stringify(entry.name)} is larger than its header says`
          : `unpacked size larger than the limit`,
      );
    }
    parts.push(chunk);
  });
  let steps = 0;
  for (let offset = 0; offset < compressed.length || offset === 0; offset += STEP) {
    const last = offset + STEP >= compressed.length;
    try {
      inflater.push(compressed.subarray(offset, offset + STEP), last);
    } catch (error) {
      if (error instanceof ZipError) throw error;
      throw new ZipError(`corrupt entry ${JSON.stringify(entry.name)}: ${error}`, { cause: error });
    }
    if (last) break;
    if (++steps % STEPS_PER_YIELD === 0) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      signal?.throwIfAborted();
    }
  }
  if (total !== entry.size) throw new ZipError(`corrupt entry ${JSON.stringify(entry.name)}`);
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
