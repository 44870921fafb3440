//! Who is chatting: the CONNECT `login` header, taken as the user name.
//!
//! There is no password: anyone may pick any free-form name. Real authentication (a JWT in
//! the CONNECT headers, checked by the framework's `security` module) replaces this later.

use stomp_runtime::async_trait;
use stomp_runtime::frame::Headers;
use stomp_runtime::security::{AuthError, Authenticator, Principal};

/// Longest user name, in characters: enough for a first name or a nickname, short enough
/// for the member list.
pub const MAX_NAME_CHARS: usize = 24;

/// Lets anyone in under the name in the CONNECT `login` header, if it is a valid name.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoginAsName;

#[async_trait]
impl Authenticator for LoginAsName {
    async fn authenticate(&self, headers: &Headers) -> Result<Option<Principal>, AuthError> {
        let login = headers.get("login").ok_or_else(|| {
            AuthError("no `login` header: the chat takes your name from it".into())
        })?;
        check_name(login).map_err(AuthError)?;
        Ok(Some(Principal::new(login)))
    }
}

/// Checks a user name: 1 to [`MAX_NAME_CHARS`] letters, digits, `-`, `_` or `.`. Names
/// address user destinations (`/user/{name}/...`), so `/` and spaces stay out.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "the name is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "the name may hold letters, digits, `-`, `_` and `.`, not {bad:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("zoë_2.0-b").is_ok());
        assert_eq!(check_name("").unwrap_err(), "the name is empty");
        assert!(check_name(&"a".repeat(25)).unwrap_err().contains("25"));
        assert!(check_name("a b").unwrap_err().contains("' '"));
        assert!(check_name("a/b").unwrap_err().contains("'/'"));
    }
}
