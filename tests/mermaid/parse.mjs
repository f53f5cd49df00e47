// Parse a Mermaid diagram from stdin with Mermaid's own parser (no browser: jsdom stands in
// for the DOM it expects). Prints OK, or ERR and the parser's message, and exits 1.
import fs from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
globalThis.HTMLElement = dom.window.HTMLElement;
const { default: mermaid } = await import("mermaid");
try {
  await mermaid.parse(fs.readFileSync(0, "utf8"));
  console.log("OK");
} catch (e) {
  console.log("ERR " + String(e.message || e).split("\n").join(" | "));
  process.exit(1);
}
