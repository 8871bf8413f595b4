//! The `analyze` run: resolve inputs, load the context, stream the failures through
//! the joiner and the classifier into the report. `run` reads as that pipeline, one
//! function per step: check the arguments ([`Plan`]), open the inputs, read the
//! context, stream and classify, write the report.

use std::io::{self, Write};

use crate::classify::{Classifier, Diagnosis};
use crate::cli::{AnalyzeArgs, Format};
use crate::context::load::{self, Loader, Prescan};
use crate::context::{align, ContextIndex};
use crate::failure::Failure;
use crate::fix::{self, MemoryOverrides};
use crate::input::stats::InputStats;
use crate::input::{self, Requested, Skipped};
use crate::join::History;
use crate::join::Joiner;
use crate::model::InputKind;
use crate::progress::Progress;
use crate::report::html::HtmlReport;
use crate::report::json::JsonReport;
use crate::report::markdown::MarkdownReport;
use crate::report::text::TextReport;
use crate::report::threaded::ThreadedReport;
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

/// Runs `gatelog analyze`, writing the report to `out`.
pub fn run(args: &AnalyzeArgs, out: &mut (dyn Write + Send)) -> Result<(), AnalyzeError> {
    let plan = Plan::from_args(args)?;
    let mut inputs = open_inputs(&plan)?;
    let mut context = read_context(&plan, &inputs)?;
    let mut progress = Progress::new(inputs.total_bytes());
    // The scope holds the report's writer thread (JSON), joined before it ends.
    std::thread::scope(|scope| {
        let report = new_report(&plan, out, scope);
        let mut handler = FailureHandler::new(&plan, &inputs, &context, report);
        let streamed = stream_and_classify(&mut inputs, &mut context, &mut handler, &mut progress);
        let mut read_errors = std::mem::take(&mut inputs.unreadable);
        read_errors.extend(streamed.read_errors);
        read_errors.extend(context.finish(&mut progress));
        progress.clear();
        handler.written()?;
        let (run_info, input_errors) =
            run_info(&plan, inputs, context, &handler, streamed.joined_lines);
        read_errors.extend(input_errors);
        write_report(handler, &run_info)?;
        if !read_errors.is_empty() {
            return Err(AnalyzeError::Input(read_errors.join("; ")));
        }
        Ok(())
    })
}

/// What the command line asks for, checked before any input is opened.
struct Plan {
    zone: Zone,
    since: Option<EpochMs>,
    until: Option<EpochMs>,
    boot_time: Option<EpochMs>,
    requested: Vec<Requested>,
    mem: MemoryOverrides,
    format: Format,
}

impl Plan {
    fn from_args(args: &AnalyzeArgs) -> Result<Plan, AnalyzeError> {
        let zone = Zone::from_flag(args.tz.as_deref()).map_err(AnalyzeError::Usage)?;
        let since = user_time("--since", &args.since, &zone)?;
        let until = user_time("--until", &args.until, &zone)?;
        let boot_time = user_time("--boot-time", &args.boot_time, &zone)?;
        if let (Some(s), Some(u)) = (since, until) {
            if u < s {
                return Err(AnalyzeError::Usage(format!(
                    "--until {} is before --since {}: no failure can be in that window",
                    args.until.as_deref().unwrap_or_default(),
                    args.since.as_deref().unwrap_or_default()
                )));
            }
        }
        let requested = requested(args);
        if requested.is_empty() {
            return Err(AnalyzeError::Usage(
                "no input given: name log files, configs or directories (see --help)".to_string(),
            ));
        }
        if requested
            .iter()
            .filter(|r| input::stdin::is_stdin(&r.path))
            .count()
            > 1
        {
            return Err(AnalyzeError::Usage(
                "- (standard input) can be given only once".to_string(),
            ));
        }
        Ok(Plan {
            zone,
            since,
            until,
            boot_time,
            requested,
            mem: MemoryOverrides {
                ram_mb: args.ram_mb,
                reserved_mb: args.reserved_mb,
                worker_mb: args.worker_mb,
            },
            format: args.format,
        })
    }
}

/// A time flag's value, read in the zone given.
fn user_time(flag: &str, v: &Option<String>, zone: &Zone) -> Result<Option<EpochMs>, AnalyzeError> {
    match v {
        None => Ok(None),
        Some(s) => time::parse_user_time(s, zone).map(Some).ok_or_else(|| {
            AnalyzeError::Usage(format!(
                "{flag} {s}: not a time (use RFC 3339, 'YYYY-MM-DD HH:MM:SS' or epoch seconds)"
            ))
        }),
    }
}

/// The inputs found and opened: the failure side streaming, a first look taken at
/// the kernel and FPM logs.
struct Inputs {
    resolved: input::Resolved,
    /// The year and month that year-less log times are read in.
    reference: (i16, i8),
    prescan: Prescan,
    /// The failure side (records, NGINX error and access logs), merged in time order.
    merger: Merger,
    /// For each of the merger's sources, its index in `resolved.inputs`.
    source_index: Vec<usize>,
    /// Entries that could not be read: in the report's skipped list, and the exit
    /// status says some input was missing.
    unreadable: Vec<String>,
}

impl Inputs {
    fn total_bytes(&self) -> u64 {
        self.resolved.inputs.iter().map(|i| i.size).sum()
    }
}

/// Finds the inputs, takes a first look at the kernel and FPM logs (to place raw
/// dmesg times) and opens the failure side, whose reader threads parse ahead (up to
/// their bounded queues) while the rest is set up.
fn open_inputs(plan: &Plan) -> Result<Inputs, AnalyzeError> {
    let resolved =
        input::resolve(&plan.requested).map_err(|e| AnalyzeError::Input(e.to_string()))?;
    let reference = resolved.latest_year_month.unwrap_or_else(|| {
        let now = jiff::Zoned::now();
        (now.year(), now.month())
    });
    let unreadable = resolved.unreadable.iter().map(|e| e.to_string()).collect();
    let context_inputs: Vec<_> = resolved
        .inputs
        .iter()
        .filter(|i| i.reads_context())
        .cloned()
        .collect();
    let prescan = load::prescan(&context_inputs, &plan.zone, reference)
        .map_err(|e| AnalyzeError::Input(format!("cannot read the kernel or FPM log: {e}")))?;
    let mut sources = Vec::new();
    let mut source_index = Vec::new();
    for (i, inp) in resolved.inputs.iter().enumerate() {
        // A file mixing NGINX and FPM lines (a container stream) is read by both
        // sides, each taking its own lines.
        if !inp.reads_failures() {
            continue;
        }
        let source = Source::open(inp.clone(), &plan.zone, reference)
            .map_err(|e| AnalyzeError::Input(format!("cannot read {}: {e}", inp.name)))?;
        sources.push(source);
        source_index.push(i);
    }
    let merger = Merger::new(sources)
        .map_err(|e| AnalyzeError::Input(format!("cannot start reading the NGINX logs: {e}")))?;
    Ok(Inputs {
        resolved,
        reference,
        prescan,
        merger,
        source_index,
        unreadable,
    })
}

/// The context side: the configs read, the logs open to be read in step with the
/// failures.
struct ContextSide {
    index: ContextIndex,
    loader: Loader,
    /// The configs with their index in the inputs (read again for undated failures).
    configs: Vec<(usize, input::Input)>,
    config_skipped: Vec<Skipped>,
    /// Counts of the configs, and of the logs once read.
    stats: Vec<(usize, InputStats)>,
    /// For each log the loader reads, its index in the inputs.
    log_index: Vec<usize>,
}

impl ContextSide {
    /// Reads the rest of the context logs, for their counts; returns the read errors.
    fn finish(&mut self, progress: &mut Progress) -> Vec<String> {
        let errors = self.loader.drain(&mut self.index, progress);
        for (k, stats) in self.loader.take_stats().into_iter().enumerate() {
            self.stats.push((self.log_index[k], stats));
        }
        errors
    }
}

/// Places raw dmesg times, reads the configs and opens the context logs.
fn read_context(plan: &Plan, inputs: &Inputs) -> Result<ContextSide, AnalyzeError> {
    let now = EpochMs(jiff::Timestamp::now().as_millisecond());
    let others_first = [inputs.prescan.fpm_first, inputs.merger.first_time()]
        .into_iter()
        .flatten()
        .min();
    let alignment = align::decide(
        plan.boot_time,
        &inputs.prescan,
        align::host_boot_time(),
        others_first.map(|f| (f, now)),
    );
    let mut index = ContextIndex::with_alignment(alignment.clone());
    let mut loader = Loader::new(
        &plan.zone,
        inputs.reference,
        alignment.boot_epoch_ms.map(EpochMs),
    );
    let all = &inputs.resolved.inputs;
    let configs: Vec<(usize, input::Input)> = all
        .iter()
        .enumerate()
        .filter(|(_, i)| is_config(i.kind))
        .map(|(k, i)| (k, i.clone()))
        .collect();
    let (mut stats, config_skipped) = load::load_configs(&configs, &mut index);
    let mut log_index = Vec::new();
    for (i, inp) in all.iter().enumerate() {
        if !inp.reads_context() || is_config(inp.kind) {
            continue;
        }
        match loader.open(inp, &mut index) {
            Ok(Some(s)) => stats.push((i, s)),
            Ok(None) => log_index.push(i),
            Err(e) => {
                return Err(AnalyzeError::Input(format!(
                    "cannot read {}: {e}",
                    inp.name
                )))
            }
        }
    }
    Ok(ContextSide {
        index,
        loader,
        configs,
        config_skipped,
        stats,
        log_index,
    })
}

fn new_report<'scope, 'env>(
    plan: &Plan,
    out: &'env mut (dyn Write + Send),
    scope: &'scope std::thread::Scope<'scope, 'env>,
) -> Box<dyn Report + 'scope> {
    let zone = plan.zone.clone();
    match plan.format {
        // The one report that writes every failure: on its own thread.
        Format::Json => Box::new(ThreadedReport::spawn(
            scope,
            Box::new(JsonReport::new(out, zone)),
        )),
        Format::Text => Box::new(TextReport::new(out, zone)),
        Format::Markdown => Box::new(MarkdownReport::new(out, zone)),
        Format::Html => Box::new(HtmlReport::new(out, zone)),
    }
}

/// What streaming the failure side leaves besides the report.
struct Streamed {
    read_errors: Vec<String>,
    /// Lines joined into failures seen in another input.
    joined_lines: u64,
}

/// Streams the failure side through the joiner to `handler`; the context window
/// follows the stream.
fn stream_and_classify(
    inputs: &mut Inputs,
    context: &mut ContextSide,
    handler: &mut FailureHandler,
    progress: &mut Progress,
) -> Streamed {
    let has_access_log = inputs
        .resolved
        .inputs
        .iter()
        .any(|i| i.has_kind(InputKind::NginxAccess));
    let mut joiner = Joiner::new(has_access_log);
    let mut read_errors = Vec::new();
    let mut completed: Vec<Failure> = Vec::new();
    let mut ctx_until = EpochMs(i64::MIN);
    let mut n: u64 = 0;
    while let Some((t, item)) = inputs.merger.next() {
        if handler.stopped() {
            break;
        }
        n += 1;
        if n % 1024 == 0 {
            progress.tick_total(inputs.merger.raw_bytes());
        }
        if ctx_until < t.plus_ms(CONTEXT_LOOKAHEAD_MS) {
            // Context up to a step ahead; nothing older than any failure still
            // pending can need.
            ctx_until = t.plus_ms(CONTEXT_LOOKAHEAD_MS + CONTEXT_STEP_MS);
            let cutoff = t.minus_ms(CONTEXT_KEEP_MS);
            read_errors.extend(context.loader.advance(
                ctx_until,
                cutoff,
                &mut context.index,
                progress,
            ));
        }
        joiner.push(t, item, &mut |f, _| completed.push(f));
        for f in completed.drain(..) {
            handler.handle(f, &context.index, &joiner.history);
        }
    }
    joiner.finish(&mut |f, _| completed.push(f));
    for f in completed.drain(..) {
        handler.handle(f, &context.index, &joiner.history);
    }
    Streamed {
        read_errors,
        joined_lines: joiner.joined_lines,
    }
}

/// Classifies each completed failure, writes its fix and hands it to the report.
struct FailureHandler<'a> {
    since: Option<EpochMs>,
    until: Option<EpochMs>,
    mem: MemoryOverrides,
    /// JSON carries every failure's fix; text and markdown show it only for the
    /// examples, and writing a fix costs.
    per_failure_fix: bool,
    classifier: Classifier,
    timeless: TimelessClassifier,
    summary: Summary,
    report: Box<dyn Report + 'a>,
    outside_window: u64,
    /// Set when the report can no longer be written (a closed pipe): reading on
    /// would only burn time.
    write_error: Option<io::Error>,
}

impl<'a> FailureHandler<'a> {
    fn new(
        plan: &Plan,
        inputs: &Inputs,
        context: &ContextSide,
        report: Box<dyn Report + 'a>,
    ) -> FailureHandler<'a> {
        FailureHandler {
            since: plan.since,
            until: plan.until,
            mem: plan.mem,
            per_failure_fix: plan.format == Format::Json,
            classifier: Classifier::default(),
            timeless: TimelessClassifier {
                configs: context.configs.clone(),
                timed_context: inputs.resolved.inputs.iter().any(|i| i.reads_context()),
                context: None,
                classifier: Classifier::default(),
            },
            summary: Summary::default(),
            report,
            outside_window: 0,
            write_error: None,
        }
    }

    fn stopped(&self) -> bool {
        self.write_error.is_some()
    }

    /// Whether every failure was written.
    fn written(&mut self) -> Result<(), AnalyzeError> {
        match self.write_error.take() {
            Some(e) => Err(AnalyzeError::Output(e)),
            None => Ok(()),
        }
    }

    /// Whether `t` is outside --since/--until.
    fn is_outside(&self, t: EpochMs) -> bool {
        self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u)
    }

    fn handle(&mut self, f: Failure, ctx: &ContextIndex, hist: &History) {
        // --since/--until cannot place a failure without a time: it is kept.
        if f.time_known && self.is_outside(f.time) {
            self.outside_window += 1;
            return;
        }
        let (diagnosis, ctx) = if f.time_known {
            (self.classifier.classify(&f, ctx, hist), ctx)
        } else {
            self.timeless.classify(&f)
        };
        let fix = if self.per_failure_fix
            || self
                .summary
                .would_keep(diagnosis.cause, diagnosis.confidence)
        {
            fix::fix_for(&diagnosis, &f, ctx, self.mem)
        } else {
            String::new()
        };
        let c = Classified {
            failure: f,
            diagnosis,
            fix,
        };
        self.summary.add(&c);
        if self.write_error.is_none() {
            if let Err(e) = self.report.failure_owned(c) {
                self.write_error = Some(e);
            }
        }
    }
}

/// Failures without any date are classified apart: with the configs but with no
/// FPM, kernel or journal line and no stream history, which are all placed by time.
struct TimelessClassifier {
    configs: Vec<(usize, input::Input)>,
    /// Whether FPM, kernel or journal logs were given (an undated failure cannot use
    /// them).
    timed_context: bool,
    /// The configs alone, read at the first undated failure.
    context: Option<(ContextIndex, History)>,
    classifier: Classifier,
}

impl TimelessClassifier {
    /// A failure without a date, against the configs alone (what they say holds at
    /// any time).
    fn classify(&mut self, f: &Failure) -> (Diagnosis, &ContextIndex) {
        let configs = &self.configs;
        let (tctx, thist) = self.context.get_or_insert_with(|| {
            let mut ctx = ContextIndex::default();
            // Read once already; what they say is the same now.
            let _ = load::load_configs(configs, &mut ctx);
            ctx.finish();
            (ctx, History::default())
        });
        let mut d = self.classifier.classify(f, tctx, thist);
        if self.timed_context {
            d.reason.push_str(
                " (the line has no date, so the FPM, kernel and journal logs given were not used for it: they are matched by time)",
            );
        }
        (d, &*tctx)
    }
}

/// What the report says about the run besides the failures, and the read errors of
/// the failure side.
fn run_info(
    plan: &Plan,
    inputs: Inputs,
    mut context: ContextSide,
    handler: &FailureHandler,
    joined_lines: u64,
) -> (RunInfo, Vec<String>) {
    let (input_stats, errors) = input_summary(
        inputs.merger,
        &inputs.resolved,
        &inputs.source_index,
        context.stats,
    );
    let run_info = RunInfo {
        inputs: input_stats,
        skipped: inputs
            .resolved
            .skipped
            .into_iter()
            .chain(context.config_skipped)
            .collect(),
        zone: plan.zone.clone(),
        alignment: context.index.alignment.clone(),
        since: plan.since,
        until: plan.until,
        dropped_events: context.index.dropped_events,
        outside_window: handler.outside_window,
        joined_lines,
        markers: std::mem::take(&mut context.index.markers),
    };
    (run_info, errors)
}

/// The inputs' counts in the order given, and the read errors of the failure side.
fn input_summary(
    merger: Merger,
    resolved: &input::Resolved,
    source_index: &[usize],
    context_stats: Vec<(usize, InputStats)>,
) -> (Vec<InputStats>, Vec<String>) {
    let mut errors = Vec::new();
    let mut all_stats = context_stats;
    for (k, s) in merger.finish().into_iter().enumerate() {
        let Some(s) = s else {
            errors.push(format!(
                "cannot read {}: reader failed",
                resolved.inputs[source_index[k]].name
            ));
            continue;
        };
        if let Some(e) = &s.error {
            errors.push(format!("cannot read {}: {e}", s.input.name));
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
    (inputs.into_iter().map(|(_, s)| s).collect(), errors)
}

/// Writes the report's summary and end.
fn write_report(handler: FailureHandler, run_info: &RunInfo) -> Result<(), AnalyzeError> {
    let FailureHandler {
        mut report,
        summary,
        ..
    } = handler;
    report
        .finish(&summary, run_info)
        .map_err(AnalyzeError::Output)
}
