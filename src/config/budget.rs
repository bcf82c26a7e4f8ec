//! `browser.memory-budget` as the one knob: how many renders run at once (and so how many warm
//! tabs may exist) is derived from the budget and the measured memory cost of Chromium and of
//! one render, unless `render.concurrency` says otherwise. See docs/adr/0012.

use super::Isolation;

/// What the tree (grender and Chromium) holds beside its renders, in MiB of RSS: the browser
/// process (with the GPU thread and the network service), its zygotes, grender. Measured on the
/// Grafana-frontend test app with the budget's flags (`bench/chaos.py budget`: solo panels and
/// whole dashboards, 8 clients): tree peaks of 447, 637 and 814 MiB at 1, 2 and 3 renders at
/// once fit 267 + 182 per render; rounded up (ADR 12, "The memory budget as the one knob").
pub const BASE_MIB: u64 = 300;

/// RSS one more concurrent render adds to the tree at its peak (a renderer process with
/// Grafana's bundle, its picture), in MiB: 182 measured as above (113 for a solo time series
/// alone; whole dashboards cost more), rounded down to the nearest 10 as BASE_MIB has the room.
pub const PER_RENDER_MIB: u64 = 180;

/// RSS one concurrent render adds with V8's default flags, in MiB: the same bench with
/// `--js-flags` left alone peaked at 942–974 MiB with 3 renders at once on solo panels (~225
/// per render, against ~178 with the size flag), rounded up for whole dashboards. A budget
/// with this much room for its renders leaves V8 at full speed (ADR 12, session 8).
pub const PER_RENDER_FULL_SPEED_MIB: u64 = 240;

/// The tree's need for `renders` at once at `per_render` MiB each.
fn need(renders: u64, per_render: u64, isolation: Isolation) -> u64 {
    match isolation {
        Isolation::Context => BASE_MIB + renders * per_render,
        // Every render is a whole Chromium, and up to two spare ones wait launched.
        Isolation::Process => (renders + renders.min(2)) * BASE_MIB + renders * per_render,
    }
}

/// What a memory budget allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Renders running at once (`render.concurrency`).
    pub concurrency: usize,
    /// The budget in MiB (0: none).
    pub budget_mib: u64,
    /// Renders at once the budget allows by the measured costs (0 without a budget).
    pub allowed: usize,
    /// Whether `concurrency` was derived from the budget (the user set none).
    pub derived: bool,
    /// Whether V8 must favour memory over speed for `concurrency` renders to fit the budget
    /// (false without a budget, or when it has room for them at full speed).
    pub v8_for_size: bool,
}

impl MemoryPlan {
    /// Derives the plan: without a budget, the user's concurrency or the CPU default; with one,
    /// the user's concurrency if set, else as many renders as fit beside Chromium's base cost,
    /// at least one and at most the CPU default. In process isolation every render is a whole
    /// Chromium, and up to two spare ones wait launched.
    pub fn derive(
        budget_mib: u64,
        user_concurrency: Option<usize>,
        cpu_default: usize,
        isolation: Isolation,
    ) -> MemoryPlan {
        let cpu_default = cpu_default.max(1);
        if budget_mib == 0 {
            return MemoryPlan {
                concurrency: user_concurrency.unwrap_or(cpu_default),
                budget_mib,
                allowed: 0,
                derived: false,
                v8_for_size: false,
            };
        }
        let mut allowed = 1;
        while allowed < cpu_default
            && need(allowed as u64 + 1, PER_RENDER_MIB, isolation) <= budget_mib
        {
            allowed += 1;
        }
        let concurrency = user_concurrency.unwrap_or(allowed);
        MemoryPlan {
            concurrency,
            budget_mib,
            allowed,
            derived: user_concurrency.is_none(),
            v8_for_size: need(concurrency as u64, PER_RENDER_FULL_SPEED_MIB, isolation)
                > budget_mib,
        }
    }

    /// Chromium flags a tight budget adds: V8 favouring memory over speed
    /// (`--optimize-for-size`: a fifth less RSS per render, but Grafana's code runs slower, one
    /// render's p50 +17–22 %), only when the budget has no room for its renders at full speed,
    /// and unless `user_flags` set V8's flags themselves.
    pub fn chromium_flags(&self, user_flags: &[String]) -> Vec<String> {
        let user_sets_v8 = user_flags.iter().any(|f| f.starts_with("--js-flags"));
        if !self.v8_for_size || user_sets_v8 {
            return Vec::new();
        }
        vec!["--js-flags=--optimize-for-size".to_string()]
    }

    /// The budget in MiB that allows `renders` at once by the measured costs (context isolation).
    pub fn budget_for(renders: u64) -> u64 {
        BASE_MIB + renders * PER_RENDER_MIB
    }

    /// The start-up line saying what the budget allows; `None` without a budget.
    pub fn summary(&self) -> Option<String> {
        if self.budget_mib == 0 {
            return None;
        }
        let plural = |n: usize, what: &str| {
            if n == 1 {
                format!("{n} {what}")
            } else {
                format!("{n} {what}s")
            }
        };
        let costs = format!(
            "Chromium ~{BASE_MIB} MiB + ~{PER_RENDER_MIB} MiB per concurrent render, measured"
        );
        let v8 = if self.v8_for_size {
            "V8 favouring memory over speed"
        } else {
            "V8 at full speed"
        };
        let mut line = format!(
            "memory budget {} MiB: {}, up to {}, {v8} ({costs})",
            self.budget_mib,
            plural(self.concurrency, "concurrent render"),
            plural(self.concurrency, "warm tab"),
        );
        if !self.derived {
            line.push_str(&format!(
                "; render.concurrency is set, the budget alone would allow {}",
                self.allowed
            ));
        }
        if self.budget_mib < BASE_MIB + PER_RENDER_MIB {
            line.push_str(&format!(
                "; below the ~{} MiB one render needs: Chromium will be recycled often",
                BASE_MIB + PER_RENDER_MIB
            ));
        }
        Some(line)
    }

    /// Whether the plan deserves a warning rather than an info line: the budget is below one
    /// render's need, or the user's concurrency is above what it allows.
    pub fn is_tight(&self) -> bool {
        self.budget_mib > 0
            && (self.budget_mib < BASE_MIB + PER_RENDER_MIB || self.concurrency > self.allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(budget: u64, user: Option<usize>) -> MemoryPlan {
        MemoryPlan::derive(budget, user, 4, Isolation::Context)
    }

    #[test]
    fn no_budget_keeps_todays_concurrency() {
        assert_eq!(plan(0, None).concurrency, 4);
        assert_eq!(plan(0, Some(7)).concurrency, 7);
        assert_eq!(plan(0, None).summary(), None);
        assert!(!plan(0, Some(7)).is_tight());
    }

    #[test]
    fn the_budget_sets_concurrency_by_the_measured_costs() {
        for n in 1..=4u64 {
            // Exactly enough for n renders, and one MiB short of n + 1.
            let budget = BASE_MIB + n * PER_RENDER_MIB;
            assert_eq!(plan(budget, None).concurrency, n as usize, "{budget} MiB");
            let short = BASE_MIB + (n + 1) * PER_RENDER_MIB - 1;
            assert_eq!(plan(short, None).concurrency, n as usize, "{short} MiB");
        }
        // Never more than the CPU default, never fewer than one.
        assert_eq!(plan(64 * 1024, None).concurrency, 4);
        assert_eq!(plan(1, None).concurrency, 1);
        assert!(plan(1, None).is_tight());
    }

    #[test]
    fn the_users_concurrency_wins_and_is_compared_with_the_budget() {
        let p = plan(BASE_MIB + PER_RENDER_MIB, Some(3));
        assert_eq!((p.concurrency, p.allowed, p.derived), (3, 1, false));
        assert!(p.is_tight());
        let line = p.summary().unwrap_or_default();
        assert!(
            line.contains("3 concurrent renders") && line.contains("allow 1"),
            "{line}"
        );
    }

    #[test]
    fn a_tight_budget_makes_v8_favour_memory_unless_the_user_sets_its_flags() {
        assert!(plan(0, None).chromium_flags(&[]).is_empty());
        assert_eq!(
            plan(1024, None).chromium_flags(&["--mute-audio".into()]),
            vec!["--js-flags=--optimize-for-size"]
        );
        let own = ["--js-flags=--max-old-space-size=512".to_string()];
        assert!(plan(1024, None).chromium_flags(&own).is_empty());
        // 896 MiB: 3 renders, which need 1020 MiB at full speed.
        assert!(plan(896, None).v8_for_size);
    }

    #[test]
    fn a_roomy_budget_leaves_v8_at_full_speed() {
        // Room for the CPU default's 4 renders at full speed: no V8 flag.
        let roomy = BASE_MIB + 4 * PER_RENDER_FULL_SPEED_MIB;
        let p = plan(roomy, None);
        assert_eq!(p.concurrency, 4);
        assert!(!p.v8_for_size && p.chromium_flags(&[]).is_empty());
        assert!(p.summary().unwrap_or_default().contains("V8 at full speed"));
        // One MiB less: the same 4 renders fit only with V8 favouring memory.
        let p = plan(roomy - 1, None);
        assert_eq!(p.concurrency, 4);
        assert_eq!(
            p.chromium_flags(&[]),
            vec!["--js-flags=--optimize-for-size"]
        );
        assert!(
            p.summary()
                .unwrap_or_default()
                .contains("V8 favouring memory over speed")
        );
        // The user's concurrency counts: 2 renders fit 1536 MiB at full speed, 6 do not.
        assert!(!plan(1536, Some(2)).v8_for_size);
        assert!(plan(1536, Some(6)).v8_for_size);
    }

    #[test]
    fn process_isolation_counts_a_chromium_per_render_and_its_spares() {
        let p = |budget| MemoryPlan::derive(budget, None, 4, Isolation::Process).concurrency;
        // One render: its Chromium and one spare.
        assert_eq!(p(2 * BASE_MIB + PER_RENDER_MIB), 1);
        assert_eq!(p(4 * BASE_MIB + 2 * PER_RENDER_MIB), 2);
        assert_eq!(p(5 * BASE_MIB + 3 * PER_RENDER_MIB), 3);
    }

    #[test]
    fn the_start_up_line_says_what_the_budget_allows() {
        let line = plan(BASE_MIB + 2 * PER_RENDER_MIB, None)
            .summary()
            .unwrap_or_default();
        let budget = BASE_MIB + 2 * PER_RENDER_MIB;
        assert!(
            line.starts_with(&format!(
                "memory budget {budget} MiB: 2 concurrent renders, up to 2 warm tabs, V8 favouring"
            )),
            "{line}"
        );
        let one = plan(BASE_MIB + PER_RENDER_MIB, None)
            .summary()
            .unwrap_or_default();
        assert!(
            one.contains("1 concurrent render, up to 1 warm tab"),
            "{one}"
        );
    }
}
