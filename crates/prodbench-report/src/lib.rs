//! Reports over finished jobs: per agent and model, the leaderboard figures with honest
//! uncertainty (see [`stats`]), and each trial's details (a live trial's traffic and events:
//! [`live`]).

pub mod html;
pub mod leaderboard;
pub mod live;
pub mod report;
pub mod stats;
