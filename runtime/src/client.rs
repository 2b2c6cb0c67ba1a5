//! Socket.IO v5 client (feature `client`).
