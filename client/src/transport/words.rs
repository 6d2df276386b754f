//! How the transport's values read: ssh's errors as one line, side channels in logs.

use super::Aux;

impl std::fmt::Debug for Aux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Aux::Ssh { agent, .. } => write!(f, "Aux::Ssh({agent})"),
            Aux::Via { prefix, .. } => write!(f, "Aux::Via({prefix:?})"),
            Aux::Local { agent, .. } => write!(f, "Aux::Local({})", agent.display()),
        }
    }
}

/// ssh's own words, on one line (the host-key warnings among them).
pub(crate) fn ssh_reason(e: &openssh::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
