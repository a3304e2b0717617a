import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "fflate";
import {
  type ExtractOptions,
  extractZip,
  isSafeEntryName,
  listZipEntries,
  ZipError,
} from "../../simulation/zip.ts";

const text = (s: string) => new TextEncoder().encode(s);
const options = (extra: Partial<ExtractOptions> = {}): ExtractOptions => ({
  maxSize: 1_000_000,
  symlinks: "refuse",
  executable: () => false,
  ...extra,
});

async function withTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "zip_test_" }));
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("entry names that could leave the destination are unsafe", () => {
  for (const name of ["a.txt", "dir/", "dir/a.py", "a b/c'd\".txt", "..a/b..", ".hidden"]) {
    assert.equal(isSafeEntryName(name), true, name);
  }
  for (
    const name of [
      "",
      "/etc/passwd",
      "../evil",
      "a/../../b",
      "a/..",
      "./a",
      "a//b",
      "a\\..\\b",
      "a\0b",
      "dir//",
    ]
  ) {
    assert.equal(isSafeEntryName(name), false, JSON.stringify(name));
  }
});

Deno.test("the central directory tells files, folders and symlinks apart", () => {
  const zip = zipSync({
    "dir/": new Uint8Array(),
    "dir/a.txt": text("hello"),
    "link": [text("a.txt"), { os: 3, attrs: 0o120777 << 16 }],
    "fifo": [new Uint8Array(), { os: 3, attrs: 0o010644 << 16 }],
    "run": [text("#!/bin/sh"), { os: 3, attrs: 0o100755 << 16 }],
  });
  const entries = listZipEntries(zip);
  assert.deepEqual(
    entries.map((e) => [e.name, e.kind]),
    [["dir/", "directory"], ["dir/a.txt", "file"], ["link", "symlink"], ["fifo", "special"], [
      "run",
      "file",
    ]],
  );
  assert.equal(entries.find((e) => e.name === "run")?.unixMode, 0o755);
  assert.equal(entries.find((e) => e.name === "dir/a.txt")?.size, 5);
});

Deno.test("bytes that are not a ZIP archive fail with a ZipError", () => {
  assert.throws(() => listZipEntries(text("Error: something")), ZipError);
  assert.throws(() => listZipEntries(new Uint8Array()), ZipError);
});

Deno.test("a large file is unpacked exactly across many inflate steps", async () => {
  await withTemp(async (dir) => {
    const big = new Uint8Array(3_000_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const zip = zipSync({ "worlds/big.bin": big, "empty.txt": new Uint8Array() });
    const result = await extractZip(zip, join(dir, "out"), options({ maxSize: 10_000_000 }));
    assert.deepEqual(result, { files: 2, directories: 0, bytes: 3_000_000 });
    assert.deepEqual(await Deno.readFile(join(dir, "out/worlds/big.bin")), big);
    assert.equal((await Deno.readFile(join(dir, "out/empty.txt"))).length, 0);
  });
});

Deno.test("unsafe names, symlinks and special files fail the whole archive before writing", async () => {
  const cases: Record<string, Parameters<typeof zipSync>[0]> = {
    "../evil.txt": { "ok.txt": text("x"), "../evil.txt": text("x") },
    "/abs.txt": { "ok.txt": text("x"), "/abs.txt": text("x") },
    "a\\b.txt": { "ok.txt": text("x"), "a\\..\\b.txt": text("x") },
    "symlink": {
      "ok.txt": text("x"),
      "link": [text("/etc/passwd"), { os: 3, attrs: 0o120777 << 16 }],
    },
    "fifo": { "ok.txt": text("x"), "fifo": [new Uint8Array(), { os: 3, attrs: 0o010644 << 16 }] },
  };
  for (const [label, files] of Object.entries(cases)) {
    await withTemp(async (dir) => {
      const out = join(dir, "a", "b");
      await assert.rejects(extractZip(zipSync(files), out, options()), ZipError, label);
      await assert.rejects(Deno.stat(out), Deno.errors.NotFound, label);
      await assert.rejects(Deno.stat(join(dir, "a", "evil.txt")), Deno.errors.NotFound, label);
    });
  }
});

Deno.test("symlinks are left out when asked to skip them", async () => {
  await withTemp(async (dir) => {
    const zip = zipSync({
      "ok.txt": text("x"),
      "link": [text("/etc/passwd"), { os: 3, attrs: 0o120777 << 16 }],
    });
    const skipped: string[] = [];
    const result = await extractZip(
      zip,
      dir,
      options({ symlinks: "skip", onSkip: (name) => skipped.push(name) }),
    );
    assert.equal(result.files, 1);
    assert.deepEqual(skipped, ["link"]);
    await assert.rejects(Deno.lstat(join(dir, "link")), Deno.errors.NotFound);
  });
});

Deno.test("an archive whose unpacked size exceeds the limit is refused", async () => {
  await withTemp(async (dir) => {
    const zip = zipSync({ "a.bin": new Uint8Array(5000), "b.bin": new Uint8Array(5000) });
    assert.ok(zip.length < 1000);
    await assert.rejects(
      extractZip(zip, join(dir, "out"), options({ maxSize: 8000 })),
      /unpacked size larger than 8000 bytes/,
    );
  });
});

Deno.test("an entry that inflates beyond its declared size is refused", async () => {
  await withTemp(async (dir) => {
    const zip = zipSync({ "bomb.bin": new Uint8Array(200_000) });
    // Patch the declared uncompressed size in the central directory to 100 bytes.
    const view = new DataView(zip.buffer);
    let at = zip.length - 22;
    at = view.getUint32(at + 16, true);
    assert.equal(view.getUint32(at, true), 0x02014b50);
    view.setUint32(at + 24, 100, true);
    await assert.rejects(
      extractZip(zip, join(dir, "out"), options()),
      /larger than its header says/,
    );
  });
});

Deno.test("select maps names and executable decides the 0o775 mode", async () => {
  await withTemp(async (dir) => {
    const zip = zipSync({
      "top/project/worlds/w.wbt": text("world"),
      "top/project/controllers/c/c.py": text("print()"),
      "top/other/x.txt": text("x"),
    });
    await extractZip(
      zip,
      dir,
      options({
        select: (name) =>
          name.startsWith("top/project/") ? name.slice("top/project/".length) : undefined,
        executable: (path) => path.endsWith(".py"),
      }),
    );
    assert.equal(await Deno.readTextFile(join(dir, "worlds/w.wbt")), "world");
    assert.equal((await Deno.stat(join(dir, "controllers/c/c.py"))).mode! & 0o777, 0o775);
    assert.notEqual((await Deno.stat(join(dir, "worlds/w.wbt"))).mode! & 0o777, 0o775);
    await assert.rejects(Deno.stat(join(dir, "x.txt")), Deno.errors.NotFound);
  });
});

Deno.test("ZIP64 end records (archives with many entries) are read", async () => {
  await withTemp(async (dir) => {
    const zip = zipSync({ "worlds/w.wbt": text("world"), "a.txt": text("a") });
    const eocd = zip.length - 22;
    const view = new DataView(zip.buffer);
    const count = view.getUint16(eocd + 10, true);
    const size = view.getUint32(eocd + 12, true);
    const offset = view.getUint32(eocd + 16, true);
    // Insert a ZIP64 end record and its locator, and mark the classic record as "see ZIP64".
    const record = new DataView(new ArrayBuffer(56 + 20));
    record.setUint32(0, 0x06064b50, true);
    record.setBigUint64(4, 44n, true);
    record.setBigUint64(24, BigInt(count), true);
    record.setBigUint64(32, BigInt(count), true);
    record.setBigUint64(40, BigInt(size), true);
    record.setBigUint64(48, BigInt(offset), true);
    record.setUint32(56, 0x07064b50, true);
    record.setBigUint64(64, BigInt(eocd), true);
    record.setUint32(72, 1, true);
    const classic = zip.slice(eocd);
    const cv = new DataView(classic.buffer);
    cv.setUint16(8, 0xffff, true);
    cv.setUint16(10, 0xffff, true);
    cv.setUint32(16, 0xffffffff, true);
    const patched = new Uint8Array(eocd + 76 + 22);
    patched.set(zip.subarray(0, eocd));
    patched.set(new Uint8Array(record.buffer), eocd);
    patched.set(classic, eocd + 76);
    assert.deepEqual(listZipEntries(patched).map((e) => e.name), ["worlds/w.wbt", "a.txt"]);
    await extractZip(patched, dir, options());
    assert.equal(await Deno.readTextFile(join(dir, "worlds/w.wbt")), "world");
  });
});

Deno.test("entries that conflict (a file where a folder is needed) fail with a ZipError", async () => {
  for (
    const files of [
      { "a": text("file"), "a/b.txt": text("x") },
      { "a/b.txt": text("x"), "a": text("file") },
    ]
  ) {
    await withTemp(async (dir) => {
      await assert.rejects(extractZip(zipSync(files), dir, options()), /conflicts with another/);
    });
  }
});
