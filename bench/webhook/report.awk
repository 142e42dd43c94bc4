# report.awk — turns run.sh's results file into the table and the JSON.
# Input lines:
#   meta KEY VALUE
#   rss TARGET LABEL VMRSS_KB VMHWM_KB
#   run TARGET ROUTE CONNS {load's JSON line}
# Per target/route/conns the run with the median reviews/s is reported, its
# latencies with it (one real run, not a mix of runs).  -v json=PATH.

function num(s, key) {
    if (!match(s, "\"" key "\":[-0-9.e+]+"))
        return 0
    return substr(s, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
}
function goal(ok) { return ok ? "met" : "NOT met" }
function jbool(ok) { return ok ? "true" : "false" }

$1 == "meta" { meta[$2] = $3; next }
$1 == "rss" {
    rss_r[$2, $3] = $4; rss_h[$2, $3] = $5
    labels[$2, ++nlabels[$2]] = $3
    if ($3 ~ /_rep1$/) rep1[$2] = $3    # the last level's first rep
    next
}
$1 == "run" {
    k = $2 SUBSEP $3 SUBSEP $4
    if (!(k in cnt)) { order[++nk] = k; tgt[k] = $2; rt[k] = $3; cn[k] = $4 }
    i = ++cnt[k]
    line[k, i] = $5
    rps[k, i] = num($5, "rps")
    fails[k] += num($5, "failed") + num($5, "warmup_failed")
    raw[++nraw] = "{\"target\":\"" $2 "\",\"rep\":" i ",\"result\":" $5 "}"
    next
}

END {
    # Pick each key's median run.
    for (o = 1; o <= nk; o++) {
        k = order[o]
        for (i = 1; i <= cnt[k]; i++) idx[i] = i
        for (i = 2; i <= cnt[k]; i++)          # insertion sort by rps
            for (j = i; j > 1 && rps[k, idx[j - 1]] > rps[k, idx[j]]; j--) {
                t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t
            }
        med[k] = line[k, idx[int((cnt[k] + 1) / 2)]]
        lo[k] = rps[k, idx[1]]; hi[k] = rps[k, idx[cnt[k]]]
    }

    printf "\n%-6s %-9s %5s %8s %9s %13s %7s %7s %7s %8s %9s %9s %9s %6s\n",
        "target", "route", "conns", "requests", "reviews/s", "(min-max)",
        "p50(us)", "p99(us)", "max(us)", "cpu(us)", "rps/floor", "p99/floor",
        "cpu/floor", "failed"
    for (o = 1; o <= nk; o++) {
        k = order[o]; m = med[k]
        f = "floor" SUBSEP "/validate" SUBSEP cn[k]
        fr = (f in med) ? num(med[f], "rps") : 0
        fp = (f in med) ? num(med[f], "p99_us") : 0
        ratio_rps[k] = fr > 0 ? num(m, "rps") / fr : 0
        ratio_p99[k] = fp > 0 ? num(m, "p99_us") / fp : 0
        fc = (f in med) ? num(med[f], "server_cpu_us") : 0
        ratio_cpu[k] = fc > 0 ? num(m, "server_cpu_us") / fc : 0
        printf "%-6s %-9s %5d %8d %9.0f %13s %7.0f %7.0f %7.0f %8.1f %9s %9s %9s %6d\n",
            tgt[k], tgt[k] == "floor" ? "(const)" : rt[k], cn[k],
            num(m, "requests"), num(m, "rps"), lo[k] "-" hi[k],
            num(m, "p50_us"), num(m, "p99_us"), num(m, "max_us"),
            num(m, "server_cpu_us"),
            tgt[k] == "floor" ? "1" : sprintf("%.2f", ratio_rps[k]),
            tgt[k] == "floor" ? "1" : sprintf("%.2f", ratio_p99[k]),
            tgt[k] == "floor" ? "1" : sprintf("%.2f", ratio_cpu[k]), fails[k]
        gen_cpu_sum += num(m, "load_cpu_us"); gen_n++
    }
    printf "median of %d runs per row by reviews/s, latencies from that run; " \
           "cpu = server user+sys CPU per review;\n" \
           "generator %.1f us CPU per review on average, sharing the %d cores; " \
           "%s\n", meta["reps"], gen_n ? gen_cpu_sum / gen_n : 0,
           meta["cpus"], meta["tls"]
    printf "loadavg %s at start, %s at end", meta["loadavg_start"], meta["loadavg_end"]
    if (meta["loadavg_start"] + 0 > 1 || meta["loadavg_end"] + 0 > 1)
        printf " -- other work was running: figures are noisy; at 1 conn a " \
               "busy machine even looks faster (vCPUs do not sleep between " \
               "requests)"
    printf "\n"

    printf "\nserver RSS (kB)        VmRSS  VmHWM\n"
    for (t = 1; t <= 2; t++) {
        name = t == 1 ? "ours" : "floor"
        for (i = 1; i <= nlabels[name]; i++) {
            l = labels[name, i]
            if (l !~ /_rep1$/)
                printf "  %-5s %-10s %6d %6d\n", name, l, rss_r[name, l],
                       rss_h[name, l]
        }
        growth[name] = rss_r[name, "after"] - rss_r[name, "before"]
        repeat[name] = rss_r[name, "after"] - rss_r[name, rep1[name]]
        printf "  %-5s growth after-before %+d kB; over repeats of the last " \
               "level (%s -> after) %+d kB\n", name, growth[name], rep1[name],
               repeat[name]
    }
    printf "  ours - floor growth: %+d kB\n", growth["ours"] - growth["floor"]

    # Goals from the issue: reported, never enforced.
    kv = "ours" SUBSEP "/validate" SUBSEP; km = "ours" SUBSEP "/mutate" SUBSEP
    printf "\ngoals (reported, not enforced):\n"
    have50 = ((kv 50) in med) && ((km 50) in med)
    g1 = have50 && ratio_rps[kv 50] >= 0.7 && ratio_rps[km 50] >= 0.7
    if (have50)
        printf "  throughput >= 0.7 x floor at 50 conns: validate %.2f, mutate %.2f -> %s\n",
            ratio_rps[kv 50], ratio_rps[km 50], goal(g1)
    else
        printf "  throughput >= 0.7 x floor at 50 conns: not measured\n"
    have1 = ((kv 1) in med) && ((km 1) in med)
    p1v = have1 ? num(med[kv 1], "p99_us") : 0
    p1m = have1 ? num(med[km 1], "p99_us") : 0
    g2 = have1 && p1v <= 250 && p1m <= 250
    if (have1)
        printf "  p99 <= 250 us at 1 conn: validate %.0f us, mutate %.0f us -> %s\n",
            p1v, p1m, goal(g2)
    else
        printf "  p99 <= 250 us at 1 conn: not measured\n"
    g3 = growth["ours"] <= 2048
    printf "  RSS growth under load <= 2 MB: %+d kB (floor itself: %+d kB, " \
           "excess %+d kB) -> %s\n", growth["ours"], growth["floor"],
           growth["ours"] - growth["floor"], goal(g3)

    # The JSON, for tracking over time.
    printf "{\n  \"reps\": %d, \"cpus\": %d, \"tls\": \"%s\", \"loadavg_start\": %s, " \
           "\"loadavg_end\": %s,\n  \"rows\": [\n", meta["reps"], meta["cpus"], meta["tls"],
           meta["loadavg_start"] + 0, meta["loadavg_end"] + 0 >json
    for (o = 1; o <= nk; o++) {
        k = order[o]; m = med[k]
        printf "    {\"target\":\"%s\",\"route\":\"%s\",\"conns\":%d," \
               "\"requests\":%d,\"rps\":%.0f,\"rps_min\":%.0f,\"rps_max\":%.0f," \
               "\"mean_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f," \
               "\"max_us\":%.1f,\"server_cpu_us\":%.2f,\"load_cpu_us\":%.2f," \
               "\"failed\":%d,\"ratio_rps\":%.3f,\"ratio_p99\":%.3f," \
               "\"ratio_cpu\":%.3f}%s\n",
               tgt[k], rt[k], cn[k], num(m, "requests"), num(m, "rps"), lo[k], hi[k],
               num(m, "mean_us"), num(m, "p50_us"), num(m, "p90_us"),
               num(m, "p99_us"), num(m, "max_us"), num(m, "server_cpu_us"),
               num(m, "load_cpu_us"), fails[k],
               tgt[k] == "floor" ? 1 : ratio_rps[k],
               tgt[k] == "floor" ? 1 : ratio_p99[k],
               tgt[k] == "floor" ? 1 : ratio_cpu[k], o < nk ? "," : "" >json
    }
    printf "  ],\n  \"rss_kb\": {\n" >json
    for (t = 1; t <= 2; t++) {
        name = t == 1 ? "ours" : "floor"
        printf "    \"%s\": {", name >json
        for (i = 1; i <= nlabels[name]; i++) {
            l = labels[name, i]
            printf "\"%s\":{\"vmrss\":%d,\"vmhwm\":%d}, ", l, rss_r[name, l],
                   rss_h[name, l] >json
        }
        printf "\"growth\":%d,\"growth_over_repeats\":%d}%s\n", growth[name],
               repeat[name], t == 1 ? "," : "" >json
    }
    printf "  },\n  \"goals\": {\n" >json
    printf "    \"throughput_ratio_c50_min_0.7\": {\"validate\":%.3f,\"mutate\":%.3f,\"met\":%s},\n",
           ratio_rps[kv 50], ratio_rps[km 50], jbool(g1) >json
    printf "    \"p99_us_c1_max_250\": {\"validate\":%.1f,\"mutate\":%.1f,\"met\":%s},\n",
           p1v, p1m, jbool(g2) >json
    printf "    \"rss_growth_kb_max_2048\": {\"ours\":%d,\"floor\":%d,\"met\":%s}\n",
           growth["ours"], growth["floor"], jbool(g3) >json
    printf "  },\n  \"runs\": [\n" >json
    for (i = 1; i <= nraw; i++)
        printf "    %s%s\n", raw[i], i < nraw ? "," : "" >json
    printf "  ]\n}\n" >json
    close(json)
}
