// The plugin loader: shared-library plugins (plugin.h) loaded with Boost.DLL from a watched
// folder, checked before any of their callbacks run, instantiated with validated config, and
// swapped while the pipeline keeps running.
//
// Lifetime rule (as OBS): a library stays loaded while any of its code may still run. Every
// PluginRef and every PluginInstance holds a shared_ptr to its library, so dropping a file
// from the folder never unmaps code that a live instance is executing.
//
// Hot-swap protocol (the pipeline's side; LiveInstances implements it):
//  1. The pipeline thread calls PluginDirectory::poll() between batches (every ~250 ms).
//     poll() only loads and checks libraries; it never creates or destroys instances.
//  2. The events are applied at that same batch boundary, on the thread that calls process():
//       Added(p)        create an instance (if the pipeline wants p: every rule plugin joins
//                       the rules stage; a stage plugin only where the config names it).
//       Replaced(o, n)  create the instance of n FIRST; if that fails the instance of o stays
//                       live (a rejection never stops the stream). Then, when o holds state
//                       (a checkpoint callback), each assigned stream's state moves from o's
//                       instance to n's (plugin.h "State hand-over", ABI 1.2) and o's is
//                       destroyed without flush; when the state cannot move (no export, no
//                       import, a format n does not read) the replace is refused before n's
//                       instance exists and o's stays, logged naming both versions. A plugin
//                       without checkpoint is retired as before: a stage drained with
//                       flush(final=1), a rule destroyed. n's instance takes o's place. No
//                       batch is seen by both or by neither.
//       Removed(name)   retire the instance as above, unless the owner requires the plugin (a
//                       configured stage): then the removal is refused and logged, the
//                       instance keeps running, and a later Added(name) is a replace.
//       Rejected(f, r)  nothing to do: poll() already logged it; the previous version of the
//                       file (if any) stays live.
//  3. A new instance starts with empty state (until a hand-over fills it): the factory should
//     call on_assign() for the streams currently assigned, exactly as after a rebalance.
//
// Threading: PluginLibrary, PluginRef and iots_plugins_describe_json are thread-safe. One
// PluginDirectory, PluginInstance or LiveInstances is used by one thread at a time.

// Where each part lives:
//   file_checks        who may write a plugin file and its folder; complete ELF for this host
//   descriptor_checks  each descriptor's header, size, name, kind, callbacks and key table
//   plugin_library     a loaded library (private copy, RTLD_LOCAL) and its plugins
//   plugin_directory   the watched folder: live plugins, rejections, change events
//   plugin_instance    one instance of a plugin with its validated config (plugin_config)
//   live_instances     the instances kept in step with the folder (the protocol above)
#pragma once

#include "plugin_host/live_instances.hpp"
#include "plugin_host/plugin_directory.hpp"
#include "plugin_host/plugin_instance.hpp"
#include "plugin_host/plugin_library.hpp"
