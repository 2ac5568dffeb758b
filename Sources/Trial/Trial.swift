// The Trial module: the cohort layer on top of the per-visit pipelines.
//
// Data flow: Dataset.discover (BIDS folder or manifest TSV -> [VisitInput] + clinical
// tables) -> TrialRunner.runParticipants (one VisitProcessor call per visit, in a bounded
// worker pool; per-visit records) -> TrialRunner.runGroup (visit records + metrics tables
// + clinical tables -> OUTPUT/group TSVs and SQLite). Trial never opens an image: the
// pipelines are injected as a VisitProcessor.
//
// Output layout:
//   OUTPUT/dataset_description.json                BIDS derivative description
//   OUTPUT/sub-XX/ses-YY/...                         the processor's files
//   OUTPUT/sub-XX/ses-YY/sub-XX_ses-YY_metrics.tsv   modality, region, metric, value
//   OUTPUT/sub-XX/ses-YY/sub-XX_ses-YY_visit.json    written last: status ok = complete
//   OUTPUT/group/metrics_long.tsv, visits.tsv, change_from_baseline.tsv, stats.tsv, trend.tsv,
//                nimetrics.sqlite
// (datasets without sessions: OUTPUT/sub-XX/sub-XX_metrics.tsv and so on).
//
// Files by role:
//   Dataset.swift        discovery, label filters, session (chronological) order
//   Labels.swift         BIDS label validation, natural order, paths that stay inside a root
//   Visit.swift          VisitInput, MetricRow, VisitResult, VisitProcessor
//   VisitRecord.swift    the _visit.json record and the _metrics.tsv table
//   TrialRunner.swift    the participant level
//   OutputGuard.swift    the output folder kept apart from the inputs, links below it refused
//   Progress.swift       progress reporting (live line on a terminal, log lines otherwise)
//   Clinical.swift       clinical tables: ISO 8601 acq_time, visit months, --clinical, sidecars, column names
//   Baseline.swift       the baseline rule and each visit's month
//   GroupConsistency.swift  parameters ids, the mixed-parameters check, outcome vs QC metrics
//   GroupTables.swift    the group level's TSVs
//   GroupStatistics.swift the group level's statistics of change (stats.tsv, trend.tsv)
//   GroupDatabase.swift  the group level's SQLite database
//   SQLiteDatabase.swift the one wrapper of the SQLite C API
//   SHA256.swift         the one wrapper of libcrypto: SHA-256 for input fingerprints
//   TrialError.swift     the module's errors, one line each: "<file>: <problem>"
//   PathPattern.swift    per-visit input paths with {subject} and {session} placeholders
//   PipelineVisitProcessor.swift  the VisitProcessor that runs the dti and fmri pipelines
