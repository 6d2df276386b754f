//! Errors as the programs print them: one sentence, each cause once.

use std::error::Error;

/// `err` and its causes as one text, `outer: cause: …`, leaving out a cause that the text
/// before it already ends with (an error whose message holds its own source, such as
/// "cannot read FILE: No such file or directory", would else print that twice).
pub fn sentence(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read the file: {}", self.0)
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug)]
    struct Context(&'static str, Outer);

    impl std::fmt::Display for Context {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Context {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.1)
        }
    }

    fn not_found() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn a_cause_the_message_already_holds_is_said_once() {
        assert_eq!(
            sentence(&Outer(not_found())),
            "cannot read the file: no such file"
        );
    }

    #[test]
    fn other_causes_follow_their_context() {
        assert_eq!(
            sentence(&Context("loading the cluster", Outer(not_found()))),
            "loading the cluster: cannot read the file: no such file"
        );
    }
}
