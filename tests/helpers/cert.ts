/**
 * A self-signed certificate for localhost/127.0.0.1 made with `deno task cert`'s openssl recipe
 * (CA:FALSE and serverAuth, which rustls requires).
 *
 * @module
 */
import { join } from "node:path";
import { opensslArgs } from "../../scripts/cert.ts";

/** The files and PEM texts of a test certificate. */
export interface TestCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

/** Writes `cert.pem` and `privkey.pem` into `dir`. */
export async function makeCertificate(dir: string): Promise<TestCertificate> {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "privkey.pem");
  const out = await new Deno.Command("openssl", {
    args: opensslArgs(certFile, keyFile, 2),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  return {
    certFile,
    keyFile,
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
  };
}
