/**
 * Reading `/metrics` in tests: one sample's value by name and labels, and `promtool check
 * metrics` on a whole exposition.
 *
 * @module
 */

/** The path of promtool (Debian package `prometheus`). */
export const PROMTOOL = "/usr/bin/promtool";

/**
 * The value of the sample `name{labels}` in a text exposition (labels in any order), or undefined
 * when there is no such sample.
 */
export function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(",");
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (!match || match[1] !== name) continue;
    const got = (match[2] ?? "").split(/,(?=[a-zA-Z_]+=")/).filter((p) => p !== "").sort()
      .join(",");
    if (got === wanted) return Number(match[3]);
  }
  return undefined;
}

/** What `promtool check metrics` said about an exposition. */
export interface PromtoolResult {
  readonly code: number;
  readonly output: string;
}

/** Runs `promtool check metrics` with `text` on its standard input. */
export async function promtoolCheck(text: string): Promise<PromtoolResult> {
  const child = new Deno.Command(PROMTOOL, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, output: decode(stdout) + decode(stderr) };
}
