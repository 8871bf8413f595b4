//! The `analyze` run: resolve inputs, load the context, stream the failures through
//! the joiner and the classifier into the report.

use std::io::{self, Write};

use crate::classify::Classifier;
use crate::cli::{AnalyzeArgs, Format};
use crate::context::load::{self, Loader};
use crate::context::{align, ContextIndex};
use crate::failure::Failure;
use crate::fix::{self, MemoryOverrides};
use crate::input::stats::InputStats;
use crate::input::{self, Requested};
use crate::join::History;
use crate::join::Joiner;
use crate::model::InputKind;
use crate::progress::Progress;
use crate::report::html::HtmlReport;
use crate::report::json::JsonReport;
use crate::report::markdown::MarkdownReport;
use crate::report::text::TextReport;
use crate::report::{Classified, Report, RunInfo, Summary};
use crate::stream::{Merger, Source};
use crate::time::{self, EpochMs, Zone};
use crate::windows::{CONTEXT_KEEP_MS, CONTEXT_LOOKAHEAD_MS, CONTEXT_STEP_MS};

/// Why a run did not succeed, with the exit status it maps to.
#[derive(Debug)]
pub enum AnalyzeError {
    /// Bad usage: exit 2.
    Usage(String),
    /// An input could not be read: exit 1. The report (if any) was still written.
    Input(String),
    /// Writing the report failed.
    Output(io::Error),
}

impl AnalyzeError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AnalyzeError::Usage(_) => 2,
            AnalyzeError::Input(_) | AnalyzeError::Output(_) => 1,
        }
    }
}

impl std::fmt::Display for AnalyzeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalyzeError::Usage(m) | AnalyzeError::Input(m) => f.write_str(m),
            AnalyzeError::Output(e) => write!(f, "cannot write the report: {e}"),
        }
    }
}

fn requested(args: &AnalyzeArgs) -> Vec<Requested> {
    let mut out: Vec<Requested> = args
        .paths
        .iter()
        .map(|p| Requested {
            path: p.clone(),
            kind: None,
        })
        .collect();
    let flagged: [(&Vec<std::path::PathBuf>, InputKind); 8] = [
        (&args.records, InputKind::Records),
        (&args.nginx_log, InputKind::NginxError),
        (&args.access_log, InputKind::NginxAccess),
        (&args.fpm_log, InputKind::Fpm),
        (&args.kernel_log, InputKind::Kernel),
        (&args.journal, InputKind::Journal),
        (&args.nginx_conf, InputKind::NginxConf),
        (&args.fpm_conf, InputKind::FpmConf),
    ];
    // Flagged paths first: a file given both ways keeps the flag's kind.
    let mut flagged_reqs: Vec<Requested> = flagged
        .iter()
        .flat_map(|(paths, kind)| {
            paths.iter().map(|p| Requested {
                path: p.clone(),
                kind: Some(*kind),
            })
        })
        .collect();
    flagged_reqs.append(&mut out);
    flagged_reqs
}

fn is_config(kind: InputKind) -> bool {
    matches!(kind, InputKind::NginxConf | InputKind::FpmConf)
}

/// The configs alone, for failures without a time: what they say holds at any time.
fn timeless_context(configs: &[(usize, input::Input)]) -> ContextIndex {
    let mut ctx = ContextIndex::default();
    // Read once already; what they say is the same now.
    let _ = load::load_configs(configs, &mut ctx);
    ctx.finish();
    ctx
}

/// Runs `gatelog analyze`, writing the report to `out`.
pub fn run(args: &AnalyzeArgs, out: &mut dyn Write) -> Result<(), AnalyzeError> {
    let zone = Zone::from_flag(args.tz.as_deref()).map_err(AnalyzeError::Usage)?;
    let parse_time = |flag: &str, v: &Option<String>| -> Result<Option<EpochMs>, AnalyzeError> {
        match v {
            None => Ok(None),
            Some(s) => time::parse_user_time(s, &zone).map(Some).ok_or_else(|| {
                AnalyzeError::Usage(format!(
                    "{flag} {s}: not a time (use RFC 3339, 'YYYY-MM-DD HH:MM:SS' or epoch seconds)"
                ))
            }),
        }
    };
    let since = parse_time("--since", &args.since)?;
    let until = parse_time("--until", &args.until)?;
    let boot_time = parse_time("--boot-time", &args.boot_time)?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(AnalyzeError::Usage(format!(
                "--until {} is before --since {}: no failure can be in that window",
                args.until.as_deref().unwrap_or_default(),
                args.since.as_deref().unwrap_or_default()
            )));
        }
    }
    let reqs = requested(args);
    if reqs.is_empty() {
        return Err(AnalyzeError::Usage(
            "no input given: name log files, configs or directories (see --help)".to_string(),
        ));
    }
    if reqs
        .iter()
        .filter(|r| input::stdin::is_stdin(&r.path))
        .count()
        > 1
    {
        return Err(AnalyzeError::Usage(
            "- (standard input) can be given only once".to_string(),
        ));
    }
    let resolved = input::resolve(&reqs).map_err(|e| AnalyzeError::Input(e.to_string()))?;
    let reference = resolved.latest_year_month.unwrap_or_else(|| {
        let now = jiff::Zoned::now();
        (now.year(), now.month())
    });
    let mem = MemoryOverrides {
        ram_mb: args.ram_mb,
        reserved_mb: args.reserved_mb,
        worker_mb: args.worker_mb,
    };
    let total_bytes: u64 = resolved.inputs.iter().map(|i| i.size).sum();
    let mut progress = Progress::new(total_bytes);
    // Entries that could not be read are in the report's skipped list; the exit
    // status says some input was missing.
    let mut read_errors: Vec<String> = resolved.unreadable.iter().map(|e| e.to_string()).collect();

    // 1. A first look at the kernel and FPM logs, to place raw dmesg times.
    let context_inputs: Vec<_> = resolved
        .inputs
        .iter()
        .filter(|i| i.reads_context())
        .cloned()
        .collect();
    let pre = load::prescan(&context_inputs, &zone, reference)
        .map_err(|e| AnalyzeError::Input(format!("cannot read the kernel or FPM log: {e}")))?;

    // 2. Open the failure side: its reader threads parse ahead (up to their bounded
    //    queues) while the rest is set up.
    let mut sources = Vec::new();
    let mut source_index = Vec::new();
    for (i, inp) in resolved.inputs.iter().enumerate() {
        // A file mixing NGINX and FPM lines (a container stream) is read by both
        // sides, each taking its own lines.
        if !inp.reads_failures() {
            continue;
        }
        match Source::open(inp.clone(), &zone, reference) {
            Ok(s) => {
                sources.push(s);
                source_index.push(i);
            }
            Err(e) => {
                return Err(AnalyzeError::Input(format!(
                    "cannot read {}: {e}",
                    inp.name
                )))
            }
        }
    }
    let mut merger = Merger::new(sources)
        .map_err(|e| AnalyzeError::Input(format!("cannot start reading the NGINX logs: {e}")))?;
    let now = EpochMs(jiff::Timestamp::now().as_millisecond());
    let others_first = [pre.fpm_first, merger.first_time()]
        .into_iter()
        .flatten()
        .min();
    let alignment = align::decide(
        boot_time,
        &pre,
        align::host_boot_time(),
        others_first.map(|f| (f, now)),
    );

    // 3. Context: configs now, logs in step with the failures.
    let mut ctx = ContextIndex::with_alignment(alignment.clone());
    let mut loader = Loader::new(&zone, reference, alignment.boot_epoch_ms.map(EpochMs));
    let mut context_stats: Vec<(usize, InputStats)> = Vec::new();
    let mut log_index: Vec<usize> = Vec::new();
    let configs: Vec<(usize, input::Input)> = resolved
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| is_config(i.kind))
        .map(|(k, i)| (k, i.clone()))
        .collect();
    let (config_stats, config_skipped) = load::load_configs(&configs, &mut ctx);
    context_stats.extend(config_stats);
    for (i, inp) in resolved.inputs.iter().enumerate() {
        if !inp.reads_context() || is_config(inp.kind) {
            continue;
        }
        match loader.open(inp, &mut ctx) {
            Ok(Some(stats)) => context_stats.push((i, stats)),
            Ok(None) => log_index.push(i),
            Err(e) => {
                return Err(AnalyzeError::Input(format!(
                    "cannot read {}: {e}",
                    inp.name
                )))
            }
        }
    }

    // 4. Stream failures through joiner, classifier and report; the context window
    //    follows the stream.
    let mut report: Box<dyn Report + '_> = match args.format {
        Format::Json => Box::new(JsonReport::new(&mut *out, zone.clone())),
        Format::Text => Box::new(TextReport::new(&mut *out, zone.clone())),
        Format::Markdown => Box::new(MarkdownReport::new(&mut *out, zone.clone())),
        Format::Html => Box::new(HtmlReport::new(&mut *out, zone.clone())),
    };
    let mut summary = Summary::default();
    let mut classifier = Classifier::default();
    let mut joiner = Joiner::new(
        resolved
            .inputs
            .iter()
            .any(|i| i.has_kind(InputKind::NginxAccess)),
    );
    // Failures without any date are classified apart: with the configs but with no
    // FPM, kernel or journal line and no stream history, which are all placed by time.
    let mut timeless: Option<(ContextIndex, History)> = None;
    let mut timeless_classifier = Classifier::default();
    let timed_context = resolved.inputs.iter().any(|i| i.reads_context());
    let per_failure_fix = args.format == Format::Json;
    let mut outside_window = 0u64;
    let mut write_error: Option<io::Error> = None;
    // Set when the report can no longer be written (a closed pipe): reading on
    // would only burn time.
    let stop = std::cell::Cell::new(false);
    {
        let mut handle = |f: Failure, ctx: &ContextIndex, hist: &History| {
            // --since/--until cannot place a failure without a time: it is kept.
            let outside = since.is_some_and(|s| f.time < s) || until.is_some_and(|u| f.time > u);
            if f.time_known && outside {
                outside_window += 1;
                return;
            }
            let (diagnosis, ctx) = if f.time_known {
                (classifier.classify(&f, ctx, hist), ctx)
            } else {
                let (tctx, thist) = timeless
                    .get_or_insert_with(|| (timeless_context(&configs), History::default()));
                let mut v = timeless_classifier.classify(&f, tctx, thist);
                if timed_context {
                    v.reason.push_str(
                        " (the line has no date, so the FPM, kernel and journal logs given were not used for it: they are matched by time)",
                    );
                }
                (v, &*tctx)
            };
            // Writing the fix costs; text and markdown show it only for the examples.
            let fix =
                if per_failure_fix || summary.would_keep(diagnosis.cause, diagnosis.confidence) {
                    fix::fix_for(&diagnosis, &f, ctx, mem)
                } else {
                    String::new()
                };
            let c = Classified {
                failure: f,
                diagnosis,
                fix,
            };
            summary.add(&c);
            if write_error.is_none() {
                if let Err(e) = report.failure(&c) {
                    write_error = Some(e);
                    stop.set(true);
                }
            }
        };
        let mut completed: Vec<Failure> = Vec::new();
        let mut ctx_until = EpochMs(i64::MIN);
        let mut n: u64 = 0;
        while let Some((t, item)) = merger.next() {
            if stop.get() {
                break;
            }
            n += 1;
            if n % 1024 == 0 {
                progress.tick_total(merger.raw_bytes());
            }
            if ctx_until < t.plus_ms(CONTEXT_LOOKAHEAD_MS) {
                // Context up to a step ahead; nothing older than any failure still
                // pending can need.
                ctx_until = t.plus_ms(CONTEXT_LOOKAHEAD_MS + CONTEXT_STEP_MS);
                let cutoff = t.minus_ms(CONTEXT_KEEP_MS);
                read_errors.extend(loader.advance(ctx_until, cutoff, &mut ctx, &mut progress));
            }
            joiner.push(t, item, &mut |f, _| completed.push(f));
            for f in completed.drain(..) {
                handle(f, &ctx, &joiner.history);
            }
        }
        joiner.finish(&mut |f, _| completed.push(f));
        for f in completed.drain(..) {
            handle(f, &ctx, &joiner.history);
        }
    }
    // The rest of the context logs, for their counts.
    read_errors.extend(loader.drain(&mut ctx, &mut progress));
    for (k, stats) in loader.into_stats().into_iter().enumerate() {
        context_stats.push((log_index[k], stats));
    }
    progress.clear();
    if let Some(e) = write_error {
        return Err(AnalyzeError::Output(e));
    }

    // 5. Input summary in the order given.
    let mut all_stats: Vec<(usize, InputStats)> = context_stats;
    for (k, s) in merger.finish().into_iter().enumerate() {
        let Some(s) = s else {
            read_errors.push(format!(
                "cannot read {}: reader failed",
                resolved.inputs[source_index[k]].name
            ));
            continue;
        };
        if let Some(e) = &s.error {
            read_errors.push(format!("cannot read {}: {e}", s.input.name));
        }
        all_stats.push((source_index[k], s.stats));
    }
    all_stats.sort_by_key(|(i, _)| *i);
    // A file read by both sides: one entry, the two readers' counts added.
    let mut inputs: Vec<(usize, InputStats)> = Vec::with_capacity(all_stats.len());
    for (i, s) in all_stats {
        match inputs.last_mut() {
            // Same input and same file: a config's includes share its index.
            Some((j, prev)) if *j == i && prev.name == s.name && !is_config(s.kind) => {
                prev.merge(s)
            }
            _ => inputs.push((i, s)),
        }
    }
    let run_info = RunInfo {
        inputs: inputs.into_iter().map(|(_, s)| s).collect(),
        skipped: resolved.skipped.into_iter().chain(config_skipped).collect(),
        zone: zone.clone(),
        alignment: ctx.alignment.clone(),
        since,
        until,
        dropped_events: ctx.dropped_events,
        outside_window,
        joined_lines: joiner.joined_lines,
        markers: std::mem::take(&mut ctx.markers),
    };
    report
        .finish(&summary, &run_info)
        .map_err(AnalyzeError::Output)?;
    drop(report);
    if !read_errors.is_empty() {
        return Err(AnalyzeError::Input(read_errors.join("; ")));
    }
    Ok(())
}
