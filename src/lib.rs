//! evcontract: code generation from a Socket.IO event contract.
