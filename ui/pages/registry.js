// Every page of the UI, in navigation order. A new endpoint family is one
// module in pages/ and one line here. `optional` pages probe their endpoint
// (lib/capabilities.js) and say "not available on this server" when the
// API answers 404.

import tasks from "./tasks.js";
import task from "./task.js";
import batches from "./batches.js";
import batch from "./batch.js";
import deadLetters from "./dead-letters.js";
import schedules from "./schedules.js";
import groups from "./groups.js";
import rules from "./rules.js";
import actionTemplates from "./action-templates.js";

export const PAGES = [tasks, task, batches, batch, deadLetters, schedules, groups, rules,
  actionTemplates];
