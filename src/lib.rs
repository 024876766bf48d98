//! boss ("Who is the Boss?"): equal nodes join a full TCP mesh and elect one master.
//!
//! The crate is split into a pure, deterministic core ([`node`], [`election`],
//! [`timer`], [`wire`], [`command`]) and the IO shell ([`shell`], [`script`]). Only
//! the shell reads clocks, touches sockets or spawns processes; the tests drive the
//! core directly through a simulated network.

pub mod command;
pub mod config;
pub mod election;
pub mod node;
pub mod ratelog;
pub mod script;
pub mod shell;
pub mod text;
pub mod timer;
pub mod wire;

pub use config::Config;
pub use node::{ConnId, Input, Node, Output, Time};
