/**
 * Configuration files: JSON with comments, validated against a per-server schema.
 *
 * One schema per server lists every key with its type, default and meaning. The same schema
 * validates a file, fills in defaults, and generates the README's reference tables, so the
 * documentation cannot drift from the code.
 *
 * @module
 */
import { parse, type ParseError, printParseErrorCode } from "jsonc-parser";
import { isAbsolute, resolve } from "node:path";

/** The value types a config key may hold. */
export type KeyType = "string" | "boolean" | "integer" | "number" | "string[]" | "string{}";

/** One key of a schema. */
export interface KeySpec {
  readonly type: KeyType;
  /** Meaning, one sentence, shown in the README. */
  readonly doc: string;
  /** Default when absent. */
  readonly default?: unknown;
  /** Computes the default from the environment and the keys listed before this one. */
  readonly computeDefault?: (env: ConfigEnv, earlier: Readonly<Record<string, unknown>>) => unknown;
  readonly required?: boolean;
  /** A path (or, for `string[]`, a list of paths): relative values resolve against the project root. */
  readonly path?: boolean;
  /** Smallest allowed value for numbers. */
  readonly min?: number;
  /** Largest allowed value for numbers. */
  readonly max?: number;
  /** Allowed values for strings. */
  readonly oneOf?: readonly string[];
  /** Another key that must be set exactly when this one is. */
  readonly together?: string;
  /**
   * A key of the reference servers that this server does not use: accepted whatever its value,
   * dropped, and reported once through the validation's `warn` callback.
   */
  readonly ignored?: boolean;
  /**
   * Another name of the key given here (e.g. the reference's later name): when the file does not
   * set that key, this key's value fills it; when it sets both, they must agree.
   */
  readonly aliasOf?: string;
  /**
   * A check the config alone decides, run on the final value (default included) with the keys
   * listed before this one; returns the problem (e.g. `must not contain ";"`) or undefined.
   */
  readonly check?: (
    value: unknown,
    earlier: Readonly<Record<string, unknown>>,
  ) => string | undefined;
  /** The README shows this instead of the computed default. */
  readonly defaultDoc?: string;
}

/** A schema: key name → spec. */
export type Schema = Readonly<Record<string, KeySpec>>;

/** What defaults may depend on. */
export interface ConfigEnv {
  /** Project root; relative paths resolve against it. */
  readonly root: string;
  /** Environment variables that defaults may read (e.g. WEBOTS_HOME). */
  readonly vars: Readonly<Record<string, string | undefined>>;
  /** The system temp folder. */
  readonly tmpDir: string;
}

type ValueOf<T extends KeyType> = T extends "string" ? string
  : T extends "boolean" ? boolean
  : T extends "integer" | "number" ? number
  : T extends "string{}" ? Record<string, string>
  : string[];

type HasValue = { required: true } | { default: unknown } | { computeDefault: unknown };
/** Keys that never reach the validated config: ignored ones and other names of a key. */
type Dropped = { ignored: true } | { aliasOf: string };

/** A key's value type: the `oneOf` strings when it lists them. */
type KeyValue<K extends KeySpec> = K extends { oneOf: readonly (infer U)[] } ? U
  : ValueOf<K["type"]>;

/**
 * The typed config a schema describes; keys without default nor `required` may be undefined;
 * ignored keys and aliases are not part of it.
 */
export type ConfigOf<S extends Schema> =
  & {
    -readonly [K in keyof S as S[K] extends Dropped ? never : S[K] extends HasValue ? K : never]:
      KeyValue<S[K]>;
  }
  & {
    -readonly [K in keyof S as S[K] extends Dropped ? never : S[K] extends HasValue ? never : K]?:
      KeyValue<S[K]>;
  };

/** A config file could not be used; the message is one line naming the file and the key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

function typeMatches(type: KeyType, value: unknown): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string[]":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "string{}":
      return typeof value === "object" && value !== null && !Array.isArray(value) &&
        Object.values(value).every((v) => typeof v === "string");
  }
}

const TYPE_NAMES: Record<KeyType, string> = {
  string: "a string",
  boolean: "true or false",
  integer: "an integer",
  number: "a number",
  "string[]": "an array of strings",
  "string{}": "an object of strings",
};

/**
 * Check for a host name put into URLs (`ws://<host>…`, `https://<host>…`): not empty, no scheme,
 * no whitespace. A path or a port may follow the host (a proxy may need them), so no more is said.
 */
export function hostCheck(value: unknown): string | undefined {
  const values = Array.isArray(value) ? value : [value];
  for (const v of values) {
    if (typeof v !== "string") continue;
    if (v === "") return "must not be empty";
    if (/[\s\p{Cc}]/u.test(v)) {
      return `must not contain spaces or control characters: ${JSON.stringify(v)}`;
    }
    if (v.includes("://")) {
      return `must name a host without a scheme such as https://: ${JSON.stringify(v)}`;
    }
  }
  return undefined;
}

/** Parses JSON-with-comments text into a plain object, or throws a ConfigError naming `file`. */
export function parseJsonc(text: string, file: string): Record<string, unknown> {
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  const first = errors[0];
  if (first) {
    const line = text.slice(0, first.offset).split("\n").length;
    throw new ConfigError(`${file}: ${printParseErrorCode(first.error)} at line ${line}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`${file}: the file must hold one JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Receives each warning line of a validation (an ignored key), e.g. to print it. */
export type ConfigWarn = (line: string) => void;

/** The warning line for a key of the reference that this server does not use. */
export function ignoredKeyWarning(file: string, key: string): string {
  return `${file}: key "${key}" is not used by this server (ignored)`;
}

const isSet = (value: unknown) => value !== undefined && value !== null;

/**
 * Validates `raw` against `schema`, fills defaults, resolves paths and runs the keys' checks.
 * Throws a ConfigError on the first unknown key, wrong type, missing required key or failed
 * check; once the file is valid, each ignored key present calls `warn` once with its warning
 * line (a file that fails gives its one error line alone).
 */
export function validateConfig<S extends Schema>(
  schema: S,
  raw: Record<string, unknown>,
  file: string,
  env: ConfigEnv,
  warn: ConfigWarn = () => {},
): ConfigOf<S> {
  for (const key of Object.keys(raw)) {
    if (!Object.hasOwn(schema, key)) {
      throw new ConfigError(`${file}: unknown key "${key}"`);
    }
  }
  const given: Record<string, unknown> = { ...raw };
  for (const [key, spec] of Object.entries(schema)) {
    if (spec.aliasOf === undefined || !isSet(raw[key])) continue;
    // Checked under the name the file uses.
    if (!typeMatches(spec.type, raw[key])) {
      throw new ConfigError(`${file}: key "${key}" must be ${TYPE_NAMES[spec.type]}`);
    }
    const problem = spec.check?.(raw[key], {});
    if (problem !== undefined) throw new ConfigError(`${file}: key "${key}" ${problem}`);
    const target = spec.aliasOf;
    if (!isSet(raw[target])) given[target] = raw[key];
    else if (raw[target] !== raw[key]) {
      throw new ConfigError(`${file}: keys "${key}" and "${target}" disagree; keep one of them`);
    }
  }
  const out: Record<string, unknown> = {};
  const warnings: string[] = [];
  for (const [key, spec] of Object.entries(schema)) {
    if (spec.ignored) {
      if (isSet(raw[key])) warnings.push(ignoredKeyWarning(file, key));
      continue;
    }
    if (spec.aliasOf !== undefined) continue;
    let value = given[key];
    if (value === undefined || value === null) {
      if (spec.required) throw new ConfigError(`${file}: missing required key "${key}"`);
      value = spec.computeDefault ? spec.computeDefault(env, out) : spec.default;
      if (value === undefined) continue;
    } else {
      if (!typeMatches(spec.type, value)) {
        throw new ConfigError(`${file}: key "${key}" must be ${TYPE_NAMES[spec.type]}`);
      }
      if (typeof value === "number") {
        if (spec.min !== undefined && value < spec.min) {
          throw new ConfigError(`${file}: key "${key}" must be at least ${spec.min}`);
        }
        if (spec.max !== undefined && value > spec.max) {
          throw new ConfigError(`${file}: key "${key}" must be at most ${spec.max}`);
        }
      }
      if (spec.oneOf && !spec.oneOf.includes(value as string)) {
        throw new ConfigError(
          `${file}: key "${key}" must be one of ${spec.oneOf.map((v) => `"${v}"`).join(", ")}`,
        );
      }
    }
    if (spec.together && !isSet(raw[spec.together])) {
      throw new ConfigError(`${file}: key "${key}" needs key "${spec.together}" as well`);
    }
    if (spec.path && typeof value === "string") value = resolvePath(value, env);
    if (spec.path && Array.isArray(value)) value = value.map((v) => resolvePath(String(v), env));
    if (spec.path && spec.type === "string{}") {
      const entries = Object.entries(value as Record<string, string>);
      value = Object.fromEntries(entries.map(([k, v]) => [k, resolvePath(v, env)]));
    }
    const problem = spec.check?.(value, out);
    if (problem !== undefined) throw new ConfigError(`${file}: key "${key}" ${problem}`);
    out[key] = value;
  }
  for (const line of warnings) warn(line);
  return out as ConfigOf<S>;
}

/** Expands `~` and `$VAR` like the reference (os.path.expanduser/expandvars), then resolves. */
export function resolvePath(value: string, env: ConfigEnv): string {
  let p = value.replace(/^~(?=$|\/)/, env.vars.HOME ?? "~");
  p = p.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, name: string) => env.vars[name] ?? m);
  return isAbsolute(p) ? resolve(p) : resolve(env.root, p);
}

/**
 * The environment config defaults are computed from: `HOME` (for `~`), `TMPDIR`, and the extra
 * variables a server's schema reads.
 */
export function processConfigEnv(root: string, extraVars: readonly string[] = []): ConfigEnv {
  const vars: Record<string, string | undefined> = {};
  for (const name of ["HOME", ...extraVars]) vars[name] = Deno.env.get(name);
  return { root, vars, tmpDir: Deno.env.get("TMPDIR") || "/tmp" };
}

/** Reads, parses and validates a config file. */
export async function loadConfig<S extends Schema>(
  schema: S,
  file: string,
  env: ConfigEnv,
  warn?: ConfigWarn,
): Promise<ConfigOf<S>> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new ConfigError(`${file}: cannot read the config file: ${reason}`, { cause: error });
  }
  return validateConfig(schema, parseJsonc(text, file), file, env, warn);
}

/** Renders a schema as a Markdown table for the README. */
export function schemaTable(schema: Schema): string {
  const rows = ["| key | type | default | meaning |", "|---|---|---|---|"];
  for (const [key, spec] of Object.entries(schema)) {
    const def = spec.defaultDoc ??
      (spec.required
        ? "required"
        : spec.default === undefined
        ? "—"
        : `\`${JSON.stringify(spec.default)}\``);
    const meaning = spec.ignored
      ? `${spec.doc} (accepted and ignored, with a warning)`
      : spec.aliasOf
      ? `${spec.doc} (read as \`${spec.aliasOf}\`)`
      : spec.doc;
    rows.push(`| \`${key}\` | ${spec.type} | ${def} | ${meaning.replaceAll("|", "\\|")} |`);
  }
  return rows.join("\n");
}
