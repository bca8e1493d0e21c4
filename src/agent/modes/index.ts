/**
 * The built-in agent modes, registered in this order (`--mode`'s help and `probe --agent` list
 * them so). A new mode: its file beside these, and one line here (docs/development.md).
 */
import { nodeMode } from "./node.js";
import { podMode } from "./pod.js";
import { registerAgentMode } from "./registry.js";
import { selectorMode } from "./selector.js";

registerAgentMode(podMode);
registerAgentMode(nodeMode);
registerAgentMode(selectorMode);

export * from "./registry.js";
