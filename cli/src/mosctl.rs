//! `openmosix mosctl`: the verbs of HOWTO table 8-6, applied through a node's agent.

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use openmosix_client::AgentConn;
use openmosix_client::migrate::kernel_moves;
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

/// `openmosix mosctl WORDS…`.
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
    // These two answer without asking the node's agent.
    match verb.as_str() {
        "isup" => return isup(ctx, node).await,
        "whois" => return addresses(ctx, node),
        _ => {}
    }
    let on = Verb {
        ctx,
        conn: ctx.conn(node).await?,
        node,
        what: format!("mosctl {node} {verb}"),
    };
    if let Some((switch, on_off)) = switch_verb(&verb) {
        return on.switch(switch, on_off).await;
    }
    match verb.as_str() {
        "expel" | "bring" => on.expel_or_bring(verb == "expel").await?,
        "gettune" | "getyard" | "getdecay" => on.tune(&verb).await?,
        "getload" | "getspeed" | "getmem" | "getfree" | "getutil" | "status" => {
            return on.figure(&verb).await;
        }
        "setspeed" => {
            let speed = arg(&args, 0, "the speed")?;
            on.set(AdminChange::Speed { speed }).await?;
        }
        "setdecay" => {
            on.set(decay_change(&args)?).await?;
        }
        "setyard" => {
            let yard = args
                .first()
                .cloned()
                .ok_or_else(|| anyhow!("usage: mosctl NODE setyard PROCESSOR-TYPE|this|SPEED"))?;
            let st = on.set(AdminChange::Yard { yard }).await?;
            print_value(
                ctx.json,
                &json!({"node": node, "yard": st.yard, "speed": st.speed}),
                &format!("yardstick {}, speed {}", st.yard, st.speed),
            );
        }
        other => bail!("mosctl: unknown verb {other}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `mosctl NODE isup`: the exit status says it too.
async fn isup(ctx: &Ctx, node: NodeId) -> Result<ExitCode> {
    let up = ctx.conn(node).await.is_ok();
    print_value(
        ctx.json,
        &json!({"node": node, "up": up}),
        if up { "up" } else { "down" },
    );
    Ok(if up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `mosctl NODE whois`: the node's addresses, from the cluster file.
fn addresses(ctx: &Ctx, node: NodeId) -> Result<ExitCode> {
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
    Ok(ExitCode::SUCCESS)
}

/// `setdecay INTERVAL [SLOW [FAST]]`.
fn decay_change(args: &[String]) -> Result<AdminChange> {
    let interval: u32 = arg(args, 0, "the decay interval")?;
    let slow = if args.len() > 1 {
        Some(arg(args, 1, "the slow decay")?)
    } else {
        None
    };
    let fast = if args.len() > 2 {
        Some(arg(args, 2, "the fast decay")?)
    } else {
        None
    };
    Ok(AdminChange::Decay {
        interval,
        slow,
        fast,
    })
}

/// A verb applied through one node's agent; `what` names it in errors.
struct Verb<'a> {
    ctx: &'a Ctx,
    conn: AgentConn,
    node: NodeId,
    what: String,
}

impl Verb<'_> {
    /// Changes the node's switches or settings.
    async fn set(&self, change: AdminChange) -> Result<AdminState> {
        self.conn
            .request(Request::AdminSet { change })
            .await
            .context(self.what.clone())
    }

    /// `stay`, `nostay`, `block` …: prints the switches in JSON mode.
    async fn switch(&self, switch: Switch, on: bool) -> Result<ExitCode> {
        let st = self.set(AdminChange::Switch { switch, on }).await?;
        if self.ctx.json {
            outln!("{}", serde_json::to_string(&st)?);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// `expel` (guests go home) or `bring` (its processes come home).
    async fn expel_or_bring(&self, expel: bool) -> Result<()> {
        let (ctx, node) = (self.ctx, self.node);
        let kernel = kernel_moves(
            &self.conn,
            if expel {
                Request::Expel
            } else {
                Request::Bring
            },
        )
        .await
        .context(self.what.clone())?;
        let (moved, failed) = match kernel {
            Some(moved) => (moved, Vec::new()),
            None if expel => crate::migrate::expel(ctx, node).await?,
            None => crate::migrate::bring(ctx, node).await?,
        };
        print_value(
            ctx.json,
            &json!({"node": node, "moved": moved, "failed": failed}),
            &moved.to_string(),
        );
        if !failed.is_empty() {
            bail!(
                "{}: {} did not move: {}",
                self.what,
                failed.len(),
                failed.join("; ")
            );
        }
        Ok(())
    }

    /// `gettune`, `getyard`, `getdecay`.
    async fn tune(&self, verb: &str) -> Result<()> {
        let t: TuneInfo = self
            .conn
            .request(Request::Tune)
            .await
            .context(self.what.clone())?;
        let text = match verb {
            "gettune" => t.tune,
            "getyard" => t.yard,
            _ => t.decay,
        };
        print_value(
            self.ctx.json,
            &json!({"node": self.node, verb: text}),
            &text,
        );
        Ok(())
    }

    /// `getload`, `getspeed`, `getmem`, `getfree`, `getutil`, `status`.
    async fn figure(&self, verb: &str) -> Result<ExitCode> {
        let info: NodeInfo = self
            .conn
            .request(Request::Node)
            .await
            .context(self.what.clone())?;
        let (v, text): (Value, String) = match verb {
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
                let admin: AdminState = self
                    .conn
                    .request(Request::AdminGet)
                    .await
                    .context(self.what.clone())?;
                return status(self.ctx, self.node, &info, &admin);
            }
        };
        print_value(self.ctx.json, &json!({"node": self.node, verb: v}), &text);
        Ok(ExitCode::SUCCESS)
    }
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
    outln!("  yardstick:                       {}", admin.yard);
    outln!(
        "  decay:                           interval {} s, slow {}, fast {}",
        admin.decay_interval,
        admin.slow_decay,
        admin.fast_decay
    );
    Ok(ExitCode::SUCCESS)
}
