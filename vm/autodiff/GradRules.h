// The backward rules of the ops in GradOps.def (one function each, in
// GradRules.cpp), written with the recording ops of Ops.h so that the backward
// pass can itself be recorded.
#pragma once
#include <vector>

#include "vm/autodiff/Tape.h"

namespace tdl::vm::ad {

// Input gradients of node `n` given its output gradient `g`: gin[k] for the
// inputs with want[k] (a list of gradients for a list input); none = zero.
void backward(const Node& n, const Value& g, const std::vector<char>& want, std::vector<Value>& gin);

}  // namespace tdl::vm::ad
