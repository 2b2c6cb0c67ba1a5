//! Socket.IO server runtime on socketioxide (feature `server`).
