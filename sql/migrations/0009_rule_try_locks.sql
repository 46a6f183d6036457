-- 0009: rule keys are tried, not waited for.
--
-- tr_rules_allow(tasks) returned a boolean after waiting for each rule key's
-- advisory lock; its successor tr_rules_try(tasks) (sql/functions/rules.sql)
-- only tries the locks and says 'free', 'full' or 'busy'. The old function
-- goes, so that nothing can wait on a rule key again.

DROP FUNCTION IF EXISTS tr_rules_allow(tasks);
