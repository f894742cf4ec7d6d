#!/usr/bin/env bash
# Lint the unit files offline, treat any warning as failure, and hold the hardening score.
set -euo pipefail
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/bin" "$root/usr/lib/systemd"
# The stock units (targets, slices) that ours refers to.
cp -r /lib/systemd/system "$root/usr/lib/systemd/"
cp systemd/*.service "$root/etc/systemd/system/"
# The unit's ExecStart must exist in the root for verify to accept it.
printf '#!/bin/sh\n' > "$root/usr/bin/edge-agent"; chmod +x "$root/usr/bin/edge-agent"
for u in systemd/*.service; do
  name=$(basename "$u")
  out=$(systemd-analyze verify --root="$root" "/etc/systemd/system/$name" 2>&1 || true)
  # verify also reports unrelated units of the build host when not run in a full root; keep only ours.
  ours=$(printf '%s\n' "$out" | grep -F "$name" || true)
  if [ -n "$ours" ]; then echo "$ours"; echo "systemd-analyze verify: $name has problems"; exit 1; fi
  score=$(systemd-analyze security --offline=yes --root="$root" --threshold=30 "$name" 2>&1 | tail -1)
  echo "$name: $score"
  systemd-analyze security --offline=yes --root="$root" --threshold=30 "$name" >/dev/null
done
# The chain drop-in: the unit with it installed must verify as cleanly, and keep its score.
mkdir -p "$root/etc/systemd/system/edge-agent.service.d" "$root/etc/edge-agent"
cp systemd/edge-agent-chain.conf "$root/etc/systemd/system/edge-agent.service.d/chain.conf"
printf 'x\n' > "$root/etc/edge-agent/keystore-password"
out=$(systemd-analyze verify --root="$root" /etc/systemd/system/edge-agent.service 2>&1 || true)
ours=$(printf '%s\n' "$out" | grep -E 'edge-agent|chain\.conf' || true)
if [ -n "$ours" ]; then echo "$ours"; echo "systemd-analyze verify: edge-agent.service with chain.conf has problems"; exit 1; fi
echo "edge-agent.service + chain.conf: $(systemd-analyze security --offline=yes --root="$root" --threshold=30 edge-agent.service 2>&1 | tail -1)"

# The Jetson drop-in (device nodes by /proc/devices name, /dev/nvmap by path): verifies as cleanly, same score.
cp systemd/edge-agent-jetson.conf "$root/etc/systemd/system/edge-agent.service.d/jetson.conf"
out=$(systemd-analyze verify --root="$root" /etc/systemd/system/edge-agent.service 2>&1 || true)
ours=$(printf '%s\n' "$out" | grep -E 'edge-agent|jetson\.conf' || true)
if [ -n "$ours" ]; then echo "$ours"; echo "systemd-analyze verify: edge-agent.service with jetson.conf has problems"; exit 1; fi
echo "edge-agent.service + chain.conf + jetson.conf: $(systemd-analyze security --offline=yes --root="$root" --threshold=30 edge-agent.service 2>&1 | tail -1)"
systemd-analyze security --offline=yes --root="$root" --threshold=30 edge-agent.service >/dev/null

# The polkit grant for the fleet's reboot, in both formats (JavaScript rules for polkit >= 0.106, .pkla for 0.105):
# evaluated against a fake polkit with a table of users and actions. Only edge-agent, only the two logind reboot
# actions; everything else is left to polkit's defaults. Node runs it always; Duktape, the engine Debian's polkit
# runs rules in, also runs it where its library is installed (it rejects what is not ECMAScript 5).
cat > "$root/polkit-harness.js" <<'EOF'
(function () {
    var failures = [];
    var rules = [];
    var polkit = {
        Result: { NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
                  AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null },
        addRule: function (f) { rules.push(f); },
        addAdminRule: function () { failures.push("rules: must not change who counts as an administrator"); },
        log: function () {},
        spawn: function () { throw new Error("rules: must not spawn programs"); }
    };
    (new Function("polkit", RULES))(polkit);
    if (rules.length !== 1) { failures.push("rules: expected 1 rule, the file adds " + rules.length); }
    // A system service's subject: no session, neither local nor active. Cases: user, action, decision, groups.
    function jsDecide(user, groups, id) {
        var action = { id: id, lookup: function () { return undefined; } };
        var subject = { user: user, groups: groups, pid: 4242, session: "", local: false, active: false,
                        isInGroup: function (g) { return groups.indexOf(g) >= 0; },
                        isInNetGroup: function () { return false; } };
        for (var i = 0; i < rules.length; i++) {
            var r = rules[i](action, subject);
            if (r !== undefined && r !== null) { return r; }
        }
        return "not handled";
    }
    function glob(pattern, s) {
        var re = pattern.replace(/[.+?^${}()|\[\]\\]/g, "\\$&").replace(/\*/g, ".*");
        return new RegExp("^" + re + "$").test(s);
    }
    // polkit 0.105's local authority: a later matching section overrides an earlier one; ResultAny for a service.
    var sections = [], cur = null, lines = PKLA.split("\n");
    for (var i = 0; i < lines.length; i++) {
        var line = lines[i].replace(/^\s+|\s+$/g, "");
        if (line === "" || line.charAt(0) === "#") { continue; }
        if (line.charAt(0) === "[") { cur = {}; sections.push(cur); continue; }
        var eq = line.indexOf("=");
        if (cur === null || eq < 0) { failures.push("pkla: stray line " + line); continue; }
        cur[line.substring(0, eq)] = line.substring(eq + 1);
    }
    if (sections.length !== 1) { failures.push("pkla: expected 1 section, found " + sections.length); }
    function pklaDecide(user, groups, id) {
        var result = "not handled";
        for (var s = 0; s < sections.length; s++) {
            var sec = sections[s], who = false, what = false;
            var ids = (sec.Identity || "").split(";"), acts = (sec.Action || "").split(";");
            for (var k = 0; k < ids.length; k++) {
                if (ids[k] === "unix-user:" + user) { who = true; }
                for (var g = 0; g < groups.length; g++) { if (ids[k] === "unix-group:" + groups[g]) { who = true; } }
            }
            for (var m = 0; m < acts.length; m++) { if (acts[m] !== "" && glob(acts[m], id)) { what = true; } }
            if (who && what) { result = sec.ResultAny || "not handled"; }
        }
        return result;
    }
    var login1 = "org.freedesktop.login1.";
    var cases = [
        ["edge-agent", login1 + "reboot", "yes"],
        ["edge-agent", login1 + "reboot-multiple-sessions", "yes"],
        ["edge-agent", login1 + "reboot-ignore-inhibit", "not handled"],
        ["edge-agent", login1 + "power-off", "not handled"],
        ["edge-agent", login1 + "halt", "not handled"],
        ["edge-agent", login1 + "suspend", "not handled"],
        ["edge-agent", login1 + "set-wall-message", "not handled"],
        ["edge-agent", login1 + "set-reboot-to-firmware-setup", "not handled"],
        ["edge-agent", login1 + "reboot.x", "not handled"],
        ["edge-agent", "org.freedesktop.systemd1.manage-units", "not handled"],
        ["edge-agent", "org.freedesktop.policykit.exec", "not handled"],
        ["root", login1 + "reboot", "not handled"],
        ["operator", login1 + "reboot", "not handled"],
        ["operator", login1 + "reboot", "not handled", ["operator", "edge-agent", "video"]],
        ["edge-agent2", login1 + "reboot", "not handled"],
        ["xedge-agent", login1 + "reboot", "not handled"],
        ["", login1 + "reboot", "not handled"]
    ];
    for (var c = 0; c < cases.length; c++) {
        var u = cases[c][0], a = cases[c][1], want = cases[c][2], groups = cases[c][3] || [u];
        var js = jsDecide(u, groups, a), pk = pklaDecide(u, groups, a);
        if (js !== want) { failures.push("rules: " + u + " " + a + " gave " + js + ", want " + want); }
        if (pk !== want) { failures.push("pkla: " + u + " " + a + " gave " + pk + ", want " + want); }
    }
    return failures.length ? "FAIL\n" + failures.join("\n") : "ok (" + cases.length + " users and actions)";
})();
EOF
node -e '
const fs = require("fs"), vm = require("vm");
const [rules, pkla, harness, out] = process.argv.slice(1);
new vm.Script(fs.readFileSync(rules, "utf8"), { filename: rules });  // a syntax error names the file and line
const src = "var RULES = " + JSON.stringify(fs.readFileSync(rules, "utf8")) + ";\nvar PKLA = " +
  JSON.stringify(fs.readFileSync(pkla, "utf8")) + ";\n" + fs.readFileSync(harness, "utf8");
fs.writeFileSync(out, src);
let r;
try { r = String(vm.runInNewContext(src, {}, { filename: "polkit-check.js" })); } catch (e) { r = "FAIL\n" + e; }
console.log("polkit grant (node): " + r);
process.exit(r.startsWith("ok") ? 0 : 1);' \
  systemd/edge-agent-reboot.rules systemd/edge-agent-reboot.pkla "$root/polkit-harness.js" "$root/polkit-check.js"
duk=$(ldconfig -p 2>/dev/null | grep -o '/[^ ]*/libduktape\.so\.[0-9]*$' | head -1 || true)
if [ -n "$duk" ] && command -v python3 >/dev/null; then
  python3 - "$duk" "$root/polkit-check.js" <<'EOF'
import ctypes, sys
d = ctypes.CDLL(sys.argv[1])
d.duk_create_heap.restype = ctypes.c_void_p
d.duk_create_heap.argtypes = [ctypes.c_void_p] * 5
d.duk_eval_raw.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]
d.duk_safe_to_lstring.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
d.duk_safe_to_lstring.restype = ctypes.c_char_p
ctx = d.duk_create_heap(None, None, None, None, None)
# duk_peval_string: DUK_COMPILE_EVAL | SAFE | NOSOURCE | STRLEN | NOFILENAME
rc = d.duk_eval_raw(ctx, open(sys.argv[2], "rb").read(), 0, (1 << 3) | (1 << 7) | (1 << 9) | (1 << 10) | (1 << 11))
out = d.duk_safe_to_lstring(ctx, -1, None).decode()
if rc != 0:
    out = "FAIL\n" + out
print("polkit grant (duktape): " + out)
sys.exit(0 if out.startswith("ok") else 1)
EOF
else
  echo "polkit grant (duktape): skipped, no libduktape here (polkitd brings it)"
fi
