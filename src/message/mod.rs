//! The probe message: what every stage shares about it. A leaf module: it
//! imports no stage.
//!
//! - [`compose`] builds the verification-code message around a random
//!   [`Token`] and [`Code`] from a [`Template`].
//! - [`sign`] adds mailcanary's own DKIM signature, with a key parsed once
//!   when the configuration is loaded.
//! - [`token`] finds the token again in delivered mail (and, later, in the
//!   copies bounces return).

pub mod compose;
pub mod sign;
pub mod token;

pub use compose::{mask, Code, Template, Token, PROBE_HEADER, TOKEN_LEN, TOKEN_PREFIX};
pub use token::{find_token, find_token_in_value};
