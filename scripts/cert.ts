/**
 * `deno task cert`: a self-signed certificate for local TLS tests, `ssl/cert.pem` and
 * `ssl/privkey.pem`, made with openssl. It carries the extensions rustls (Deno's TLS) requires of
 * a server certificate: a plain `openssl req -x509` marks it CA:TRUE, which rustls rejects with
 * `CaUsedAsEndEntity`. Existing files are kept unless `--force`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

/** The project root. */
const ROOT = resolve(import.meta.dirname ?? ".", "..");

/** What to make. */
export interface CertOptions {
  readonly outDir: string;
  readonly days: number;
  readonly force: boolean;
}

/** openssl's arguments for a key and certificate valid for localhost and 127.0.0.1. */
export function opensslArgs(cert: string, key: string, days: number): string[] {
  return [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    String(days),
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "extendedKeyUsage=serverAuth",
    "-addext",
    "keyUsage=critical,digitalSignature,keyEncipherment",
  ];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Makes the pair; returns the exit status and prints what happened. */
export async function makeCert(options: CertOptions): Promise<number> {
  const cert = join(options.outDir, "cert.pem");
  const key = join(options.outDir, "privkey.pem");
  if (!options.force) {
    const present = [];
    for (const file of [cert, key]) if (await exists(file)) present.push(file);
    if (present.length > 0) {
      console.error(`${present.join(" and ")} already exist(s); use --force to replace`);
      return 1;
    }
  }
  await Deno.mkdir(options.outDir, { recursive: true });
  let out;
  try {
    out = await new Deno.Command("openssl", {
      args: opensslArgs(cert, key, options.days),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      console.error("openssl is not installed (e.g. apt-get install openssl)");
      return 1;
    }
    throw error;
  }
  if (!out.success) {
    console.error(`openssl failed (${out.code}):\n${new TextDecoder().decode(out.stderr)}`);
    return 1;
  }
  await Deno.chmod(key, 0o600);
  console.log(`Wrote ${cert} and ${key} (self-signed for localhost, valid ${options.days} days).
Clients must trust ${cert}: e.g. DENO_CERT=${cert}, or Deno.createHttpClient({ caCerts }).`);
  return 0;
}

/** Usage text of `deno task cert`. */
export const USAGE = `Usage: deno task cert [--force] [--days N] [--out-dir DIR]

Makes a self-signed certificate for localhost: DIR/cert.pem and DIR/privkey.pem (default DIR: ssl).
  --force        replace existing files
  --days N       validity (default 365)
  --out-dir DIR  where to write (default: ssl in the project)`;

/** Parses the command line and makes the pair; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        force: { type: "boolean", default: false },
        days: { type: "string", default: "365" },
        "out-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1) {
    console.error(`--days must be a positive integer, not ${values.days}`);
    return 2;
  }
  const outDir = values["out-dir"] === undefined
    ? join(ROOT, "ssl")
    : resolve(Deno.env.get("INIT_CWD") ?? Deno.cwd(), values["out-dir"]);
  return await makeCert({ outDir, days, force: values.force });
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
