//! File → add node…: a node joins by its ssh destination. A worker thread checks the host
//! key, asks the user (fingerprint, Accept/Reject) when it is unknown, refuses a changed
//! one with a warning, then installs the agent when the node has none and records the node
//! in the cluster file; every step shows here as it happens. The UI thread only reads
//! messages from the worker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use egui::{Color32, RichText};
use openmosix_client::ClientOptions;
use openmosix_client::hostkey::{self, HostKeyCheck, HostKeyStatus};
use openmosix_client::provision::{self, AddNode, Progress, Step, StepState};

const RED: Color32 = Color32::from_rgb(210, 50, 40);
const GREEN: Color32 = Color32::from_rgb(40, 150, 60);

/// What the worker tells the dialog.
#[derive(Debug)]
enum Msg {
    /// A step moved on.
    Step(Progress),
    /// The host key is unknown: the user decides (the worker waits).
    Ask(Question),
    /// Finished: the cluster file on success, or the sentence saying why not.
    Done(Result<(PathBuf, String), String>),
}

/// The host key question on screen.
#[derive(Debug, Clone)]
struct Question {
    /// `ED25519`, …
    kind: String,
    /// `SHA256:…`
    fingerprint: String,
    /// Where it would be recorded.
    file: String,
}

/// The File → add node… window.
#[derive(Debug, Default)]
pub struct AddNodeDialog {
    /// Whether the window is shown.
    pub open: bool,
    /// The ssh destination typed in.
    pub dest: String,
    /// The cluster file the node goes into.
    pub cluster_file: String,
    steps: BTreeMap<Step, StepState>,
    question: Option<Question>,
    /// The user's answer to the question goes to the waiting worker.
    answer: Option<mpsc::Sender<bool>>,
    messages: Option<mpsc::Receiver<Msg>>,
    /// The last outcome: Ok(summary) or Err(sentence).
    outcome: Option<Result<String, String>>,
}

impl AddNodeDialog {
    /// Opens the window; `cluster_file` is the file the main window shows, if any.
    pub fn open(&mut self, cluster_file: Option<&std::path::Path>) {
        self.open = true;
        if self.cluster_file.is_empty()
            && let Some(f) = cluster_file
        {
            self.cluster_file = f.display().to_string();
        }
    }

    /// Whether a run is under way.
    pub fn running(&self) -> bool {
        self.messages.is_some()
    }

    fn start(&mut self, ctx: &egui::Context) {
        let dest = self.dest.trim().to_owned();
        let file = self.cluster_file.trim().to_owned();
        self.steps.clear();
        self.question = None;
        self.outcome = None;
        if dest.is_empty() {
            self.outcome = Some(Err("type the node's ssh destination ([user@]host)".into()));
            return;
        }
        if file.is_empty() {
            self.outcome = Some(Err(
                "name the cluster file to record the node in (it is created if missing)".into(),
            ));
            return;
        }
        let (tx, rx) = mpsc::channel();
        let (answer_tx, answer_rx) = mpsc::channel();
        self.messages = Some(rx);
        self.answer = Some(answer_tx);
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("add-node".into())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(work(&dest, PathBuf::from(file), &tx, &answer_rx, &ctx)),
                    Err(e) => Err(format!("cannot start the worker's runtime: {e}")),
                };
                let _ = tx.send(Msg::Done(result));
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.messages = None;
            self.outcome = Some(Err(format!("cannot start a worker thread: {e}")));
        }
    }

    /// Takes in the worker's messages; returns the cluster file when a node was added.
    fn poll(&mut self) -> Option<PathBuf> {
        let mut added = None;
        let Some(rx) = &self.messages else {
            return None;
        };
        let mut finished = false;
        for msg in rx.try_iter() {
            match msg {
                Msg::Step(p) => {
                    self.steps.insert(p.step, p.state);
                }
                Msg::Ask(question) => {
                    self.steps.insert(
                        Step::HostKey,
                        StepState::Running("unknown key: waiting for your choice".into()),
                    );
                    self.question = Some(question);
                }
                Msg::Done(result) => {
                    finished = true;
                    self.question = None;
                    if result.is_err() {
                        // A step still running when the worker gave up failed with it.
                        for state in self.steps.values_mut() {
                            if matches!(state, StepState::Running(_)) {
                                *state = StepState::Failed("stopped: see below".into());
                            }
                        }
                    }
                    self.outcome = Some(match result {
                        Ok((path, summary)) => {
                            added = Some(path);
                            Ok(summary)
                        }
                        Err(e) => Err(e),
                    });
                }
            }
        }
        if finished {
            self.messages = None;
            self.answer = None;
        }
        added
    }

    fn decide(&mut self, accept: bool) {
        if let Some(tx) = &self.answer {
            let _ = tx.send(accept);
        }
        self.question = None;
    }

    /// Draws the window (when open); returns the cluster file when a node was added, so
    /// the main window can show it.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<PathBuf> {
        let added = self.poll();
        if !self.open {
            return added;
        }
        let mut open = true;
        egui::Window::new("add node")
            .open(&mut open)
            .resizable(true)
            .default_width(620.0)
            .default_pos([60.0, 200.0])
            .show(ctx, |ui| self.ui(ui));
        // Closing the window mid-run leaves the worker to finish; its outcome stays.
        self.open = open;
        added
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        let busy = self.running();
        self.fields_ui(ui, busy);
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new("add")).clicked() {
                self.start(ui.ctx());
            }
            if busy {
                ui.spinner();
                ui.label("working…");
            }
        });
        if !self.steps.is_empty() {
            ui.separator();
            egui::Grid::new("add-node-steps")
                .num_columns(3)
                .striped(true)
                .show(ui, |ui| {
                    for step in Step::ALL {
                        step_row(ui, step, self.steps.get(&step));
                        ui.end_row();
                    }
                });
        }
        if let Some(q) = self.question.clone() {
            ui.separator();
            self.question_ui(ui, &q);
        }
        let (text, colour) = match &self.outcome {
            Some(Ok(summary)) => (summary, GREEN),
            Some(Err(why)) => (why, RED),
            None => return,
        };
        ui.separator();
        ui.colored_label(colour, text);
    }

    /// The ssh destination and the cluster file (fixed while a run is under way).
    fn fields_ui(&mut self, ui: &mut egui::Ui, busy: bool) {
        egui::Grid::new("add-node-fields")
            .num_columns(2)
            .show(ui, |ui| {
                let l = ui.label("ssh destination");
                ui.add_enabled(
                    !busy,
                    egui::TextEdit::singleline(&mut self.dest).hint_text("root@node3"),
                )
                .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("cluster file");
                ui.add_enabled(
                    !busy,
                    egui::TextEdit::singleline(&mut self.cluster_file)
                        .hint_text("cluster.toml")
                        .desired_width(360.0),
                )
                .labelled_by(l.id);
                ui.end_row();
            });
    }

    /// The unknown host key, with Accept and Reject.
    fn question_ui(&mut self, ui: &mut egui::Ui, q: &Question) {
        ui.label(
            RichText::new(format!(
                "The host key of {} is not known. Its {} fingerprint is:",
                self.dest.trim(),
                q.kind
            ))
            .strong(),
        );
        ui.monospace(&q.fingerprint);
        ui.label(format!(
            "Compare it with the node's own (on the node: ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub). Accepting records it in {}.",
            q.kind.to_lowercase(),
            q.file
        ));
        ui.horizontal(|ui| {
            if ui
                .button(format!("Accept {} {}", q.kind, q.fingerprint))
                .clicked()
            {
                self.decide(true);
            }
            if ui.button("Reject").clicked() {
                self.decide(false);
            }
        });
    }
}

fn step_row(ui: &mut egui::Ui, step: Step, state: Option<&StepState>) {
    let (mark, detail, colour) = match state {
        None => ("·", "", ui.visuals().weak_text_color()),
        Some(StepState::Running(d)) => ("…", d.as_str(), ui.visuals().text_color()),
        Some(StepState::Done(d)) => ("ok", d.as_str(), GREEN),
        Some(StepState::Skipped(d)) => ("skipped", d.as_str(), ui.visuals().weak_text_color()),
        Some(StepState::Failed(d)) => ("FAILED", d.as_str(), RED),
    };
    if matches!(state, Some(StepState::Running(_))) {
        ui.spinner();
    } else {
        ui.colored_label(colour, mark);
    }
    ui.label(format!("{}. {}", step.number(), step.title()));
    ui.add(egui::Label::new(RichText::new(detail).color(colour)).wrap());
}

/// The worker's line to the dialog: every message wakes the UI.
struct Reporter<'a> {
    tx: &'a mpsc::Sender<Msg>,
    ctx: &'a egui::Context,
}

impl Reporter<'_> {
    fn send(&self, m: Msg) {
        let _ = self.tx.send(m);
        self.ctx.request_repaint();
    }

    /// The host-key step is now `state`.
    fn host_key(&self, state: StepState) {
        self.send(Msg::Step(Progress {
            step: Step::HostKey,
            state,
        }));
    }
}

/// The worker: host key (asking through `answer` when unknown), then provisioning.
async fn work(
    dest: &str,
    cluster_file: PathBuf,
    tx: &mpsc::Sender<Msg>,
    answer: &mpsc::Receiver<bool>,
    ctx: &egui::Context,
) -> Result<(PathBuf, String), String> {
    let reporter = Reporter { tx, ctx };
    let cluster = provision::load_cluster(&cluster_file)?;
    let options = cluster
        .as_ref()
        .map_or_else(ClientOptions::default, ClientOptions::for_cluster);
    trust_host_key(dest, &options, &reporter, answer).await?;
    let plan = AddNode {
        dest: dest.to_owned(),
        cluster_file: cluster_file.clone(),
        id: None,
        agent_binary: provision::default_agent_binary(),
        relay_binary: provision::default_relay_binary(),
        gateway: false,
        via: None,
        options,
    };
    let mut report = |p: Progress| reporter.send(Msg::Step(p));
    let added = provision::provision(&plan, &mut report)
        .await
        .map_err(|e| e.message)?;
    Ok((
        cluster_file,
        format!(
            "node {} ({dest}) added{}: agent {} answers",
            added.id,
            if added.installed {
                ", agent installed"
            } else {
                ""
            },
            added.hello.agent_version
        ),
    ))
}

/// Checks the host key of `dest`: a known one passes, a changed one is refused with the
/// warning, an unknown one is put to the user (through `answer`) and recorded if accepted.
async fn trust_host_key(
    dest: &str,
    options: &ClientOptions,
    reporter: &Reporter<'_>,
    answer: &mpsc::Receiver<bool>,
) -> Result<(), String> {
    reporter.host_key(StepState::Running(format!(
        "asking {dest} for its host key"
    )));
    let check = hostkey::check(dest, options.ssh_config.as_deref(), options.connect_timeout)
        .await
        .map_err(|e| e.to_string())?;
    match &check.status {
        HostKeyStatus::Known { .. } | HostKeyStatus::Vouched { .. } => Ok(()),
        HostKeyStatus::Changed { recorded, offered } => {
            let warning = HostKeyCheck::changed_warning(&check.target, recorded, offered);
            reporter.host_key(StepState::Failed("refused: see the warning below".into()));
            Err(warning)
        }
        HostKeyStatus::Unknown { offered } => {
            reporter.send(Msg::Ask(Question {
                kind: offered.short_kind().to_owned(),
                fingerprint: offered.fingerprint(),
                file: check.target.record_file_name(),
            }));
            // The worker thread waits here; the UI thread keeps drawing.
            let accepted = answer.recv().unwrap_or(false);
            if !accepted {
                reporter.host_key(StepState::Failed("rejected".into()));
                return Err(format!(
                    "host key of {dest} rejected: nothing was recorded or changed"
                ));
            }
            let file = hostkey::accept(&check, &offered.fingerprint())
                .await
                .map_err(|e| e.to_string())?;
            reporter.host_key(StepState::Running(format!(
                "recorded {} {} in {}",
                offered.short_kind(),
                offered.fingerprint(),
                file.display()
            )));
            Ok(())
        }
    }
}
