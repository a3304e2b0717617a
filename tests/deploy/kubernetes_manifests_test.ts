/**
 * The Kubernetes manifests of deploy/kubernetes/: every document validated against the
 * Kubernetes API schemas (kubernetes-models, Kubernetes 1.27), the configs in the ConfigMaps
 * validated by the servers' own config code, and the wiring between the objects (selectors,
 * config mounts, ports, probes, the drain) checked against what the servers do.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { join, resolve } from "node:path";
import { DaemonSet, Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap, Service } from "kubernetes-models/v1";
import type { IContainer, IPodSpec, IPodTemplateSpec } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { type ConfigEnv, parseJsonc, validateConfig } from "../../shared/config.ts";
import { sessionSchema } from "../../session/config.ts";
import { simulationSchema } from "../../simulation/config.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const DIR = join(ROOT, "deploy", "kubernetes");

/** The environment of the container: no WEBOTS_HOME or HOME from this machine leaks in. */
const CONTAINER_ENV: ConfigEnv = { root: "/opt/webots-servers", vars: {}, tmpDir: "/tmp" };

type Manifest = { apiVersion: string; kind: string; metadata: { name: string } };

/** Builds the kubernetes-models object of a document, by its apiVersion and kind. */
function model(doc: Manifest): { validate(): void } {
  const key = `${doc.apiVersion}/${doc.kind}`;
  switch (key) {
    case "v1/ConfigMap":
      return new ConfigMap(doc as never);
    case "v1/Service":
      return new Service(doc as never);
    case "apps/v1/Deployment":
      return new Deployment(doc as never);
    case "apps/v1/DaemonSet":
      return new DaemonSet(doc as never);
    default:
      throw new Error(`no schema for ${key} (${doc.metadata?.name})`);
  }
}

/** Every document of every manifest file, by `Kind/name`. */
async function manifests(): Promise<Map<string, Manifest & Record<string, unknown>>> {
  const all = new Map<string, Manifest & Record<string, unknown>>();
  for await (const entry of Deno.readDir(DIR)) {
    if (!entry.name.endsWith(".yaml")) continue;
    const text = await Deno.readTextFile(join(DIR, entry.name));
    for (const doc of parseAllDocuments(text)) {
      deepEqual(doc.errors.map(String), [], `${entry.name} parses`);
      const value = doc.toJS() as Manifest & Record<string, unknown>;
      const id = `${value.kind}/${value.metadata.name}`;
      equal(all.has(id), false, `${id} is defined once`);
      all.set(id, value);
    }
  }
  return all;
}

function get<T>(all: Map<string, unknown>, id: string): T {
  const value = all.get(id);
  ok(value, `${id} is in deploy/kubernetes/`);
  return value as T;
}

function container(pod: IPodSpec, name: string): IContainer {
  const found = pod.containers.find((c) => c.name === name);
  ok(found, `container ${name}`);
  return found;
}

/** The config file a container's `deno task <server> <file>` reads, and what it holds there. */
function mountedConfig(
  all: Map<string, unknown>,
  pod: IPodSpec,
  c: IContainer,
  server: string,
): string {
  const [deno, task, which, file] = c.command ?? [];
  deepEqual([deno, task, which], ["deno", "task", server]);
  ok(file, "the config file is named");
  const mount = (c.volumeMounts ?? []).find((m) => file.startsWith(`${m.mountPath}/`));
  ok(mount, `${file} is in a mounted volume`);
  const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
  const mapName = volume?.configMap?.name;
  ok(mapName, `${mount.name} is a ConfigMap volume`);
  const map = get<{ data: Record<string, string> }>(all, `ConfigMap/${mapName}`);
  const text = map.data[file.slice(mount.mountPath.length + 1)];
  ok(text, `${mapName} holds ${file}`);
  return text;
}

Deno.test("every manifest passes the Kubernetes schemas", async () => {
  const all = await manifests();
  deepEqual([...all.keys()].sort(), [
    "ConfigMap/webots-session-config",
    "ConfigMap/webots-simulation-config",
    "DaemonSet/webots-simulation",
    "Deployment/webots-session",
    "Service/webots-session",
    "Service/webots-simulation",
  ]);
  for (const [id, doc] of all) {
    try {
      model(doc).validate();
    } catch (error) {
      throw new Error(`${id}: ${error}`);
    }
  }
});

Deno.test("the schema check refuses a wrong type and a missing required field", async () => {
  const all = await manifests();
  const ds = structuredClone(get<Record<string, unknown>>(all, "DaemonSet/webots-simulation"));
  const pod = (ds.spec as { template: IPodTemplateSpec }).template.spec as IPodSpec;
  (pod.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = "2000";
  throws(() => model(ds as Manifest).validate(), /containerPort must be integer/);
  const svc = structuredClone(get<Record<string, unknown>>(all, "Service/webots-simulation"));
  delete (svc.spec as { ports: { port?: number }[] }).ports[0]!.port;
  throws(
    () => model(svc as Manifest).validate(),
    /spec\/ports\/0 must have required property port/,
  );
});

Deno.test("the configs in the ConfigMaps pass the servers' own validation", async () => {
  const all = await manifests();
  const ds = get<DaemonSet>(all, "DaemonSet/webots-simulation");
  const pod = ds.spec!.template.spec!;
  const simText = mountedConfig(all, pod, container(pod, "simulation"), "simulation");
  const sim = validateConfig(
    simulationSchema,
    parseJsonc(simText, "simulation.json"),
    "simulation.json",
    CONTAINER_ENV,
    (line) => {
      throw new Error(line);
    },
  );
  equal(sim.port, 2000);
  ok(sim.drainTimeout > 0, "the simulation servers drain on SIGTERM");
  equal(sim.debug, true, "logs go to standard output (kubectl logs)");

  const deployment = get<Deployment>(all, "Deployment/webots-session");
  const sessionPod = deployment.spec!.template.spec!;
  const sessText = mountedConfig(all, sessionPod, container(sessionPod, "session"), "session");
  const session = validateConfig(
    sessionSchema,
    parseJsonc(sessText, "session.json"),
    "session.json",
    CONTAINER_ENV,
    (line) => {
      throw new Error(line);
    },
  );
  equal(session.port, 1999);
  // Discovery follows the headless Service of the simulation pods, on their port.
  const headless = get<Service>(all, "Service/webots-simulation");
  equal(headless.spec!.clusterIP, "None");
  const port = headless.spec!.ports![0]!.port;
  equal(port, sim.port);
  deepEqual(session.simulationServers, [
    `dns:${headless.metadata!.name}.default.svc.cluster.local:${port}`,
  ]);
});

Deno.test("the simulation DaemonSet: GPU nodes, host network, probes, and a drain the grace period covers", async (t) => {
  const all = await manifests();
  const ds = get<DaemonSet>(all, "DaemonSet/webots-simulation");
  const pod = ds.spec!.template.spec!;
  const sim = container(pod, "simulation");
  await t.step("host network and GPU", () => {
    equal(pod.hostNetwork, true);
    equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
    equal(String(sim.resources?.limits?.["nvidia.com/gpu"]), "1");
    ok(pod.tolerations?.some((x) => x.key === "nvidia.com/gpu"));
    deepEqual(sim.ports?.map((p) => [p.containerPort, p.hostPort]), [[2000, 2000]]);
  });
  await t.step("liveness on /health, readiness on /ready, on the server's port", () => {
    deepEqual(sim.livenessProbe?.httpGet, { path: "/health", port: 2000 });
    deepEqual(sim.readinessProbe?.httpGet, { path: "/ready", port: 2000 });
  });
  await t.step("preStop drains with SIGTERM; the grace period covers drain + kill", () => {
    const hook = sim.lifecycle?.preStop?.exec?.command?.join(" ") ?? "";
    ok(hook.includes("kill -TERM 1"), hook);
    const config = validateConfig(
      simulationSchema,
      parseJsonc(mountedConfig(all, pod, sim, "simulation"), "simulation.json"),
      "simulation.json",
      CONTAINER_ENV,
    );
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    ok(
      grace >= config.drainTimeout + config.killTimeout + 25,
      `terminationGracePeriodSeconds ${grace} < drainTimeout ${config.drainTimeout} + killTimeout ${config.killTimeout} + 25`,
    );
  });
  await t.step("Webots' display: an Xvfb container on :99", () => {
    const xvfb = container(pod, "xvfb");
    deepEqual(xvfb.command?.slice(0, 2), ["/usr/bin/Xvfb", ":99"]);
    deepEqual(sim.env?.find((e) => e.name === "DISPLAY")?.value, ":99");
  });
  await t.step("the instances folder is a volume", () => {
    const config = validateConfig(
      simulationSchema,
      parseJsonc(mountedConfig(all, pod, sim, "simulation"), "simulation.json"),
      "simulation.json",
      CONTAINER_ENV,
    );
    ok(sim.volumeMounts?.some((m) => m.mountPath === config.instancesDir));
  });
});

Deno.test("Services select the pods and reach the servers' ports; the simulation one is headless", async () => {
  const all = await manifests();
  const pairs: [string, string, string, number][] = [
    ["Service/webots-simulation", "DaemonSet/webots-simulation", "simulation", 2000],
    ["Service/webots-session", "Deployment/webots-session", "session", 1999],
  ];
  for (const [serviceId, workloadId, name, port] of pairs) {
    const service = get<Service>(all, serviceId);
    const workload = get<Deployment | DaemonSet>(all, workloadId);
    const labels = workload.spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(service.spec!.selector!)) equal(labels[k], v, serviceId);
    for (const [k, v] of Object.entries(workload.spec!.selector.matchLabels!)) {
      equal(labels[k], v, workloadId);
    }
    const c = container(workload.spec!.template.spec!, name);
    const target = service.spec!.ports![0]!.targetPort;
    const named = c.ports?.find((p) => p.name === target || p.containerPort === target);
    equal(named?.containerPort, port, `${serviceId} targets port ${port}`);
  }
  equal(get<Service>(all, "Service/webots-simulation").spec!.clusterIP, "None");
});

Deno.test("the session Deployment: probes on /health and /ready, one replica", async () => {
  const all = await manifests();
  const deployment = get<Deployment>(all, "Deployment/webots-session");
  const session = container(deployment.spec!.template.spec!, "session");
  deepEqual(session.livenessProbe?.httpGet, { path: "/health", port: 1999 });
  deepEqual(session.readinessProbe?.httpGet, { path: "/ready", port: 1999 });
  // Several replicas only with slot leases (see the README), which this config does not set.
  equal(deployment.spec!.replicas, 1);
});

Deno.test("both servers' pods carry Prometheus scrape annotations for /metrics on their port", async () => {
  const all = await manifests();
  const pods: [string, string][] = [
    ["DaemonSet/webots-simulation", "2000"],
    ["Deployment/webots-session", "1999"],
  ];
  for (const [id, port] of pods) {
    const workload = get<Deployment | DaemonSet>(all, id);
    deepEqual(workload.spec!.template.metadata!.annotations, {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": port,
      "prometheus.io/path": "/metrics",
    }, id);
  }
});
