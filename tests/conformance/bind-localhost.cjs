// Preloaded into every conformance-suite process (NODE_OPTIONS="--require <this file>").
//
// In client mode the suite starts mock MCP servers with `server.listen(0)`: no host, so Node binds
// the unspecified address (:: or 0.0.0.0) and the mocks would be reachable from the network. We
// want them on loopback only.
//
// Patching `listen()` to add a host does not work: with a host, Node resolves it through an
// asynchronous lookup, and the suite reads `server.address().port` synchronously right after
// `listen()` returns. Every listen ends in `net.Server.prototype._listen2(address, port,
// addressType, backlog, fd, flags)`, synchronously when no host was given; it is the hook Node
// keeps for this. We fill in 127.0.0.1 there when neither an address nor a file descriptor came.
'use strict';

const net = require('node:net');

const realListen2 = net.Server.prototype._listen2;
if (typeof realListen2 !== 'function') {
  throw new Error('bind-localhost.cjs: net.Server.prototype._listen2 is gone in this Node; refusing to run unconfined');
}

net.Server.prototype._listen2 = function listenOnLoopback(address, port, addressType, backlog, fd, flags) {
  const wildcard = address === undefined || address === null || address === '' || address === '::' || address === '0.0.0.0';
  if (wildcard && typeof fd !== 'number') {
    return realListen2.call(this, '127.0.0.1', port, 4, backlog, fd, flags);
  }
  return realListen2.call(this, address, port, addressType, backlog, fd, flags);
};
