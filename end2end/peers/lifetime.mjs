// Peers stop by themselves: when the process that started them closes our stdin (it exited), or after a
// hard limit, whichever comes first.
export function boundLifetime(server, minutes = 10) {
  const stop = () => { server.close(); process.exit(0); };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  setTimeout(stop, minutes * 60_000);
  process.on('SIGTERM', stop);
}
