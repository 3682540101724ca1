//! Reports over finished jobs: per agent and model, the leaderboard figures with honest
//! uncertainty (see [`stats`]).

pub mod html;
pub mod leaderboard;
pub mod report;
pub mod stats;
