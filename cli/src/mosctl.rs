//! `openmosix mosctl`: the verbs of HOWTO table 8-6, applied through a node's agent.

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use openmosix_hpc::model::{AdminChange, AdminState, NodeId, NodeInfo, Switch};
use openmosix_hpc::protocol::{Request, TuneInfo};
use serde_json::{Value, json};

use crate::commands::Ctx;
use crate::output::{mib, print_value};

/// Every verb, for parsing and for the error message.
const VERBS: &[&str] = &[
    "stay", "nostay", "lstay", "nolstay", "block", "noblock", "quiet", "noquiet", "nomfs", "mfs",
    "expel", "bring", "gettune", "getyard", "getdecay", "whois", "getload", "getspeed", "status",
    "isup", "getmem", "getfree", "getutil", "setspeed", "setdecay", "setyard",
];

fn switch_verb(verb: &str) -> Option<(Switch, bool)> {
    Some(match verb {
        "stay" => (Switch::Stay, true),
        "nostay" => (Switch::Stay, false),
        "lstay" => (Switch::Lstay, true),
        "nolstay" => (Switch::Lstay, false),
        "block" => (Switch::Block, true),
        "noblock" => (Switch::Block, false),
        "quiet" => (Switch::Quiet, true),
        "noquiet" => (Switch::Quiet, false),
        "nomfs" => (Switch::Nomfs, true),
        "mfs" => (Switch::Nomfs, false),
        _ => return None,
    })
}

/// Splits `NODE VERB ARGS…` or `VERB NODE ARGS…` (the HOWTO's order for the get verbs).
fn split(words: &[String]) -> Result<(Option<NodeId>, String, Vec<String>)> {
    let is_verb = |w: &str| VERBS.contains(&w);
    match words {
        [first, verb, rest @ ..] if first.parse::<NodeId>().is_ok() && is_verb(verb) => {
            Ok((first.parse().ok(), verb.clone(), rest.to_vec()))
        }
        [verb, rest @ ..] if is_verb(verb) => {
            // `whois X` takes a name or address, not a node to ask.
            if verb == "whois" {
                return Ok((None, verb.clone(), rest.to_vec()));
            }
            match rest.split_first() {
                Some((n, more)) if n.parse::<NodeId>().is_ok() => {
                    Ok((n.parse().ok(), verb.clone(), more.to_vec()))
                }
                _ => Ok((None, verb.clone(), rest.to_vec())),
            }
        }
        _ => bail!(
            "usage: mosctl NODE VERB [ARG]; unknown verb in {:?} (verbs: {})",
            words.join(" "),
            VERBS.join(" ")
        ),
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T> {
    let a = args.get(i).ok_or_else(|| anyhow!("missing {what}"))?;
    a.parse()
        .map_err(|_| anyhow!("{what} must be a number, not {a:?}"))
}

pub async fn run(ctx: &Ctx, words: &[String]) -> Result<ExitCode> {
    let (node, verb, args) = split(words)?;
    if verb == "whois" && node.is_none() {
        return whois(ctx, args.first().map(String::as_str));
    }
    let node = match node {
        Some(n) => n,
        None if ctx.cluster.nodes.len() == 1 => ctx.cluster.nodes[0].id,
        None => bail!("mosctl {verb}: name the node (mosctl NODE {verb})"),
    };
    if verb == "isup" {
        let up = ctx.conn(node).await.is_ok();
        print_value(
            ctx.json,
            &json!({"node": node, "up": up}),
            if up { "up" } else { "down" },
        );
        return Ok(if up {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if verb == "whois" {
        let n = ctx
            .cluster
            .node(node)
            .ok_or_else(|| anyhow!("node {node} is not in the cluster"))?;
        let addr = n.addresses.join(" ");
        print_value(
            ctx.json,
            &json!({"node": node, "addresses": n.addresses}),
            &addr,
        );
        return Ok(ExitCode::SUCCESS);
    }
    let conn = ctx.conn(node).await?;
    let what = format!("mosctl {node} {verb}");
    let admin_set = |change| Request::AdminSet { change };
    if let Some((switch, on)) = switch_verb(&verb) {
        let st: AdminState = conn
            .request(admin_set(AdminChange::Switch { switch, on }))
            .await
            .context(what)?;
        if ctx.json {
            outln!("{}", serde_json::to_string(&st)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match verb.as_str() {
        "expel" | "bring" => {
            let (moved, failed) = if conn.hello().backend == "kernel" {
                // An openMosix kernel moves them itself.
                let req = if verb == "expel" {
                    Request::Expel
                } else {
                    Request::Bring
                };
                (
                    conn.request::<u32>(req).await.context(what.clone())?,
                    Vec::new(),
                )
            } else if verb == "expel" {
                crate::migrate::expel(ctx, node).await?
            } else {
                crate::migrate::bring(ctx, node).await?
            };
            print_value(
                ctx.json,
                &json!({"node": node, "moved": moved, "failed": failed}),
                &moved.to_string(),
            );
            if !failed.is_empty() {
                bail!(
                    "{what}: {} did not move: {}",
                    failed.len(),
                    failed.join("; ")
                );
            }
        }
        "gettune" | "getyard" | "getdecay" => {
            let t: TuneInfo = conn.request(Request::Tune).await.context(what)?;
            let text = match verb.as_str() {
                "gettune" => t.tune,
                "getyard" => t.yard,
                _ => t.decay,
            };
            print_value(ctx.json, &json!({"node": node, verb.as_str(): text}), &text);
        }
        "getload" | "getspeed" | "getmem" | "getfree" | "getutil" | "status" => {
            let info: NodeInfo = conn.request(Request::Node).await.context(what.clone())?;
            let (v, text): (Value, String) = match verb.as_str() {
                "getload" => (json!(info.load), format!("{}", info.load)),
                "getspeed" => (json!(info.speed), info.speed.to_string()),
                "getmem" => (
                    json!(info.mem),
                    format!("{} ({} MiB)", info.mem, mib(info.mem)),
                ),
                "getfree" => (
                    json!(info.rmem),
                    format!("{} ({} MiB)", info.rmem, mib(info.rmem)),
                ),
                "getutil" => (json!(info.util), format!("{}%", info.util)),
                _ => {
                    let admin: AdminState = conn.request(Request::AdminGet).await.context(what)?;
                    return status(ctx, node, &info, &admin);
                }
            };
            print_value(ctx.json, &json!({"node": node, verb.as_str(): v}), &text);
        }
        "setspeed" => {
            let speed: u32 = arg(&args, 0, "the speed")?;
            conn.request::<AdminState>(admin_set(AdminChange::Speed { speed }))
                .await
                .context(what)?;
        }
        "setdecay" => {
            let interval: u32 = arg(&args, 0, "the decay interval")?;
            let slow = if args.len() > 1 {
                Some(arg(&args, 1, "the slow decay")?)
            } else {
                None
            };
            let fast = if args.len() > 2 {
                Some(arg(&args, 2, "the fast decay")?)
            } else {
                None
            };
            conn.request::<AdminState>(admin_set(AdminChange::Decay {
                interval,
                slow,
                fast,
            }))
            .await
            .context(what)?;
        }
        "setyard" => bail!("setyard: the yardstick is this suite's calibrated speed; use setspeed"),
        other => bail!("mosctl: unknown verb {other}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn whois(ctx: &Ctx, key: Option<&str>) -> Result<ExitCode> {
    let key = key.ok_or_else(|| anyhow!("usage: mosctl whois ID|ADDRESS|HOSTNAME"))?;
    let found = ctx.cluster.nodes.iter().find(|n| {
        key.parse::<NodeId>().is_ok_and(|id| id == n.id) || n.addresses.iter().any(|a| a == key)
    });
    let n = found.ok_or_else(|| anyhow!("{key} is not a node of the cluster"))?;
    print_value(
        ctx.json,
        &json!({"node": n.id, "addresses": n.addresses}),
        &format!("{} {}", n.id, n.addresses.join(" ")),
    );
    Ok(ExitCode::SUCCESS)
}

fn status(ctx: &Ctx, node: NodeId, info: &NodeInfo, admin: &AdminState) -> Result<ExitCode> {
    if ctx.json {
        outln!("{}", json!({"node": info, "admin": admin}));
        return Ok(ExitCode::SUCCESS);
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    outln!("This is openMosix node #{node} ({:?})", info.status);
    outln!("  stay (no automatic migration):   {}", yn(admin.stay));
    outln!("  lstay (local processes stay):    {}", yn(admin.lstay));
    outln!("  block (refuse guests):           {}", yn(admin.block));
    outln!("  quiet (no load gathering):       {}", yn(admin.quiet));
    outln!(
        "  mfs:                             {}",
        if admin.nomfs { "disabled" } else { "enabled" }
    );
    outln!("  speed:                           {}", admin.speed);
    outln!(
        "  decay:                           interval {} s, slow {}, fast {}",
        admin.decay_interval,
        admin.slow_decay,
        admin.fast_decay
    );
    Ok(ExitCode::SUCCESS)
}
