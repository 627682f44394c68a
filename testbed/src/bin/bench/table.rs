//! The text table of a report on stdout: the data, the contenders' medians
//! and machine shares, latency, memory, ratios and targets.

use serde_json::{json, Value};

/// A number of the report with `d` decimals, or `-` where it has none.
fn f(v: &Value, d: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.d$}"),
        None => "-".into(),
    }
}

/// Issue 21's row: the companion's copy against the zip's and the bare dump's, and what each downloads.
fn companion(o: &mut String, c: &Value) {
    if c.is_null() {
        return;
    }
    let b = &c["download_bytes"];
    let mbs = |v: &Value| f(&json!(v.as_f64().unwrap_or(0.0) / 1e6), 1);
    o.push_str(&format!(
        "\nfilestore companion (issue 21), medians: sidecar-dump-companion / sidecar-zip = {}×, / sidecar-dump = {}× (difference to sidecar-dump {} s)\n",
        f(&c["vs_zip"], 2),
        f(&c["vs_dump"], 2),
        f(&c["over_dump_s"], 2)
    ));
    o.push_str(&format!(
        "  downloaded: custom dump {} MB + companion {} MB = {} MB; Odoo zip {} MB (its filestore entries {} MB compressed)\n",
        mbs(&b["dump"]),
        mbs(&b["companion"]),
        mbs(&b["dump_and_companion"]),
        mbs(&b["zip"]),
        mbs(&b["zip_filestore"])
    ));
    if !c["companion_download_s"].is_null() {
        o.push_str(&format!(
            "  at moto's download speed: the companion alone {} s, dump+companion beyond the zip {} s\n",
            f(&c["companion_download_s"], 2),
            f(&c["extra_download_vs_zip_s"], 2)
        ));
    }
}

/// Where each sidecar copy's time went: its steps' mean seconds, share, and cores used.
fn steps(o: &mut String, all: &Value) {
    let Some(all) = all.as_object().filter(|a| !a.is_empty()) else { return };
    o.push_str("\nwhere the time goes (mean over the copies; cores: PostgreSQL / the sidecar with its pg_restore):\n");
    for (contender, s) in all {
        let line: Vec<String> = s["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                let share = x["share"].as_f64().map_or("beside".to_string(), |v| format!("{:.0}%", v * 100.0));
                format!(
                    "{} {} s {share} ({}/{})",
                    x["step"].as_str().unwrap_or(""),
                    f(&x["s"], 2),
                    f(&x["postgres_cores"], 1),
                    f(&x["sidecar_cores"], 1)
                )
            })
            .collect();
        o.push_str(&format!("  {contender} (sum {} s): {}\n", f(&s["sum_s"], 2), line.join(", ")));
    }
}

/// Prints the table of a report (made by this run or read back from `--json`) on stdout.
pub fn print(r: &Value) {
    let mut o = String::new();
    let d = &r["data"];
    o.push_str(&format!(
        "numikube-staging benchmark — {} cores ({}), {} reps each, run took {:.0} s (rounds {:.0} s)\n",
        r["machine"]["cores"],
        r["machine"]["cpu"].as_str().unwrap_or(""),
        r["reps"],
        r["total_s"].as_f64().unwrap_or(0.0),
        r["rounds_s"].as_f64().unwrap_or(0.0)
    ));
    o.push_str(&format!(
        "data: shape {} ({} rows in its big table), database {} MB on disk, filestore {} files / {} MB, custom dump {} MB, Odoo zip {} MB\n",
        d["shape"].as_str().unwrap_or("spread"),
        d["big_table_rows"].as_u64().unwrap_or(0),
        f(&json!(d["database_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
        d["filestore_files"],
        f(&json!(d["filestore_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
        f(&json!(d["custom_dump_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
        f(&json!(d["zip_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
    ));
    o.push_str(&format!(
        "PostgreSQL: {} — {}\n",
        r["postgres"]["settings"].as_str().unwrap_or(""),
        r["postgres"]["note"].as_str().unwrap_or("")
    ));
    if r["io"].get("moto_download_mb_s").is_some() {
        o.push_str(&format!(
            "io: moto GET of the dump {} MB/s; disk write (dd 1 GiB, conv=fdatasync) {} MB/s; \
             small durable write (write+fsync+rename+fsync dir) {} ms\n",
            f(&r["io"]["moto_download_mb_s"], 0),
            f(&r["io"]["disk_write_mb_s"], 0),
            f(&r["io"]["durable_small_write_ms"], 2)
        ));
    }
    for (key, what) in [("repeat_warmup", "repeat"), ("anonymized_repeat_warmup", "anonymized repeat")] {
        if !r[key].is_null() {
            o.push_str(&format!(
                "{what}: warm-up copy {} s, template ready: {} ({} s after its callback)\n",
                f(&r[key]["warmup_copy_s"], 1),
                r[key]["template_ready"],
                f(&r[key]["template_ready_after_s"], 1)
            ));
        }
    }
    o.push('\n');
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["contender", "median s", "min–max s", "n", "cpu%", "iowait%", "pg", "tools", "other", "MB→disk"]);
    let mut failures = Vec::new();
    for row in r["results"].as_array().into_iter().flatten() {
        let contender = row["contender"].as_str().unwrap_or("");
        table.add_row([
            contender.to_string(),
            f(&row["median_s"], 2),
            format!("{}–{}", f(&row["min_s"], 2), f(&row["max_s"], 2)),
            row["n"].to_string(),
            f(&row["cpu_busy_pct"], 0),
            f(&row["iowait_pct"], 0),
            f(&row["postgres_cores"], 2),
            f(&row["tools_cores"], 2),
            f(&row["other_cores"], 2),
            f(&row["written_mb"], 0),
        ]);
        for e in row["failures"].as_array().into_iter().flatten() {
            failures.push(format!("    {contender} failed: {}\n", e.as_str().unwrap_or("").lines().next().unwrap_or("")));
        }
    }
    // Numbers right-aligned, one space apart, as the table always was.
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 1));
        if i > 0 {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    for line in table.lines() {
        o.push_str(line.trim_end());
        o.push('\n');
    }
    failures.iter().for_each(|line| o.push_str(line));
    o.push_str(
        "(averages over the runs: cpu% = busy share of all cores, iowait% = share of all cores waiting on I/O;\n \
         pg / tools / other = cores used by PostgreSQL's server processes / by this bench, its pg_restore, psql,\n \
         cp, moto and the sidecars / by anything else on the machine; MB→disk = written to the disks during the run)\n\n",
    );
    let l = &r["latency"];
    for (k, what) in [("refused_by_limit", "refused by the limit"), ("accepted", "accepted")] {
        let x = &l[k];
        if !x.is_null() {
            o.push_str(&format!(
                "staging_run, {} clients × {} requests, {what}: p50 {} ms, p99 {} ms, max {} ms, {} req/s ({} accepted, {} refused by limit, {} other errors)\n",
                l["clients"], l["requests_per_client"], f(&x["p50_ms"], 1), f(&x["p99_ms"], 1), f(&x["max_ms"], 1),
                f(&x["requests_per_s"], 0), x["accepted"], x["refused_by_limit"], x["other_errors"]
            ));
            // If the sidecar serves these one at a time, each waits for the others: clients / throughput.
            let per = 1e3 / x["requests_per_s"].as_f64().unwrap_or(f64::NAN);
            o.push_str(&format!(
                "    {} ms per request served one after the other; × {} clients = {} ms\n",
                f(&json!(per), 2),
                l["clients"],
                f(&json!(per * l["clients"].as_f64().unwrap_or(0.0)), 1)
            ));
            if let Some(e) = x["first_error"].as_str() {
                o.push_str(&format!("    first error: {e}\n"));
            }
        }
    }
    if !r["rss"]["vmhwm_kib"].is_null() {
        o.push_str(&format!(
            "sidecar RSS during the cold restores: VmHWM {} MiB, sampled max VmRSS {} MiB (sidecar process only)\n",
            f(&json!(r["rss"]["vmhwm_kib"].as_f64().unwrap_or(0.0) / 1024.0), 1),
            f(&json!(r["rss"]["sampled_max_vmrss_kib"].as_f64().unwrap_or(0.0) / 1024.0), 1),
        ));
    }
    companion(&mut o, &r["companion"]);
    steps(&mut o, &r["steps"]);
    o.push_str("\nratios of the sidecar to each baseline (medians):\n");
    for x in r["ratios"].as_array().into_iter().flatten() {
        o.push_str(&format!(
            "  {:<22} / {:<13} = {}×\n",
            x["sidecar"].as_str().unwrap_or(""),
            x["baseline"].as_str().unwrap_or(""),
            f(&x["ratio"], 2)
        ));
    }
    o.push_str("\ntargets (issue 5 item 5):\n");
    for t in r["targets"].as_array().into_iter().flatten() {
        let status = match t["met"].as_bool() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        o.push_str(&format!(
            "  [{status:^12}] {}: {} {}\n",
            t["target"].as_str().unwrap_or(""),
            f(&t["value"], 2),
            t["unit"].as_str().unwrap_or("")
        ));
    }
    for w in r["warnings"].as_array().into_iter().flatten() {
        o.push_str(&format!("warning: {}\n", w.as_str().unwrap_or("")));
    }
    if let Some(wd) = r["work_dir"].as_str() {
        o.push_str(&format!("work dir kept: {wd}\n"));
    }
    print!("{o}");
}
