import { equal } from "node:assert/strict";
import {
  checkUrl,
  hostWithoutPort,
  loadUrl,
  monitorUrl,
  simulationServerWsUrl,
  webotsStreamUrl,
} from "../../shared/urls.ts";

const plain = { ssl: false, portRewrite: false };
const ssl = { ssl: true, portRewrite: false };
const rewrite = { ssl: false, portRewrite: true };

Deno.test("session replies use ws, or wss with SSL or port rewriting", () => {
  equal(simulationServerWsUrl("localhost:2000", plain), "ws://localhost:2000");
  equal(simulationServerWsUrl("localhost:2000", ssl), "wss://localhost:2000");
  equal(simulationServerWsUrl("example.com/2000", rewrite), "wss://example.com/2000");
});

Deno.test("load and monitor URLs follow the entry's scheme", () => {
  equal(loadUrl("h:2000", plain), "http://h:2000/load");
  equal(loadUrl("h/2000", rewrite), "https://h/2000/load");
  equal(monitorUrl("h:2000", ssl), "https://h:2000/monitor");
});

Deno.test("webots stream URLs use : or / as the reference", () => {
  equal(webotsStreamUrl("localhost", 2001, plain), "ws://localhost:2001");
  equal(webotsStreamUrl("example.com", 2001, rewrite), "wss://example.com/2001");
  equal(webotsStreamUrl("example.com", 2001, ssl), "wss://example.com:2001");
});

Deno.test("the e-mail check link points at the session server's monitor", () => {
  equal(checkUrl("localhost", 1999, plain), "http://localhost:1999/monitor");
  equal(checkUrl("example.com", 1999, rewrite), "https://example.com/1999/monitor");
});

Deno.test("the Host header loses its port, IPv6 literals keep their brackets", () => {
  equal(hostWithoutPort("localhost:2000"), "localhost");
  equal(hostWithoutPort("example.com"), "example.com");
  equal(hostWithoutPort("[::1]:2000"), "[::1]");
  equal(hostWithoutPort("127.0.0.1"), "127.0.0.1");
});
