/*
 * cg_split — reads a callgrind output file of gate_workload and prints the
 * gate's instructions per RPC, udrpc's and the user's apart:
 *
 *   cg_split CALLGRIND_OUT COUNT PREFIX [PLUGIN_OBJECT]
 *
 * prints "PREFIX_client_instr_per_rpc X", "PREFIX_server_instr_per_rpc X"
 * and, with a plugin, "PREFIX_continuation_instr_per_rpc X" and
 * "PREFIX_handler_instr_per_rpc X", where (inclusive costs, over COUNT
 * RPCs):
 *
 *   continuation = bench_user_request + bench_user_check (the client's
 *                  own code: making requests, checking responses)
 *   client       = client_step - continuation
 *   handler      = bench_user_handler - the udrpc calls made from the
 *                  plugin's object (udrpc_resp_msgbuf, udrpc_enqueue_response
 *                  ...: udrpc's work, on the handler's behalf)
 *   server       = server_step - handler
 *
 * The file format is callgrind's (valgrind's docs, "Callgrind Format
 * Specification"): name compression "(id) name", fn= blocks of cost lines,
 * calls= followed by the inclusive cost of that call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAMES 200000

static char *fn_names[MAX_NAMES], *ob_names[MAX_NAMES];

/* "(id) name" defines, "(id)" refers, "name" is itself: returns the name. */
static const char *compressed(char *v, char **table)
{
    if (*v != '(')
        return v;
    char *end;
    long id = strtol(v + 1, &end, 10);
    if (*end != ')' || id < 0 || id >= MAX_NAMES)
        return v;
    if (end[1] == ' ') {
        free(table[id]);
        table[id] = strdup(end + 2);
    }
    return table[id] ? table[id] : "?";
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* The cost after the position columns of a cost line. */
static double cost_of(const char *line, int positions)
{
    const char *p = line;
    for (int i = 0; i < positions; i++) {
        while (*p && *p != ' ')
            p++;
        while (*p == ' ')
            p++;
    }
    return strtod(p, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: cg_split CALLGRIND_OUT COUNT PREFIX [PLUGIN_OBJECT]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    double count = atof(argv[2]);
    const char *plugin = argc == 5 ? argv[4] : NULL;
    const char *tail = plugin && strrchr(plugin, '/') ? strrchr(plugin, '/') + 1 : plugin;
    enum { CLIENT, SERVER, HANDLER, REQUEST, CHECK, N_FN };
    static const char *const wanted[N_FN] = { "client_step", "server_step", "bench_user_handler",
                                              "bench_user_request", "bench_user_check" };
    double incl[N_FN] = { 0 }, from_plugin = 0;
    int cur = -1, positions = 1, in_plugin = 0, after_call = 0, callee_udrpc = 0;
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "positions:", 10)) {
            positions = 0;
            for (char *t = strtok(line + 10, " "); t; t = strtok(NULL, " "))
                positions++;
        } else if (!strncmp(line, "ob=", 3)) {
            const char *ob = compressed(line + 3, ob_names);
            in_plugin = tail && ends_with(ob, tail);
        } else if (!strncmp(line, "cob=", 4)) {
            compressed(line + 4, ob_names);
        } else if (!strncmp(line, "fn=", 3)) {
            const char *fn = compressed(line + 3, fn_names);
            cur = -1;
            for (int i = 0; i < N_FN; i++)
                if (!strcmp(fn, wanted[i]))
                    cur = i;
        } else if (!strncmp(line, "cfn=", 4)) {
            const char *fn = compressed(line + 4, fn_names);
            /* udrpc's public functions; udrpc__ ones are internal */
            callee_udrpc = !strncmp(fn, "udrpc_", 6) && fn[6] != '_';
        } else if (!strncmp(line, "calls=", 6)) {
            after_call = 1;
        } else if ((line[0] >= '0' && line[0] <= '9') || line[0] == '+' || line[0] == '-' ||
                   line[0] == '*') {
            double c = cost_of(line, positions);
            if (cur >= 0)
                incl[cur] += c; /* self cost, and the inclusive cost of its calls */
            if (after_call && in_plugin && callee_udrpc)
                from_plugin += c;
            after_call = 0;
        } /* files (fl=, fi=, fe=, cfi=) and the header: not needed */
    }
    fclose(f);
    if (incl[CLIENT] <= 0 || incl[SERVER] <= 0 || count <= 0) {
        fprintf(stderr, "cg_split: %s has no client_step or server_step: not a gate_workload "
                        "run with --toggle-collect as bench/udrpc_gate makes it\n", argv[1]);
        return 1;
    }
    double cont = incl[REQUEST] + incl[CHECK], handler = incl[HANDLER] - from_plugin;
    if (plugin && incl[HANDLER] <= 0) {
        fprintf(stderr, "cg_split: no bench_user_handler in %s: the plugin's handler never ran "
                        "in the measured part (a background handler?)\n", argv[1]);
        return 1;
    }
    printf("%s_client_instr_per_rpc %.1f\n", argv[3], (incl[CLIENT] - cont) / count);
    printf("%s_server_instr_per_rpc %.1f\n", argv[3], (incl[SERVER] - handler) / count);
    if (plugin) {
        printf("%s_continuation_instr_per_rpc %.1f\n", argv[3], cont / count);
        printf("%s_handler_instr_per_rpc %.1f\n", argv[3], handler / count);
    }
    return 0;
}
