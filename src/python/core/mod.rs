//! The protocol-neutral half of the binding.

pub mod call;
pub mod completer;
pub mod errors;
pub mod submit;
