/* SPDX-License-Identifier: GPL-3.0-or-later */
/* "closure": the closure's store paths, sorted, one a line (as `nix-store -qR`). */
#include <string.h>

#include "packfs/format.h"

static int closure_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        pf_plan_builder *b = NULL;
        int r;

        r = pf_plan_builder_new(&b);
        if (r < 0)
                return r;
        for (size_t i = 0; i < view->closure->n_items && r >= 0; i++) {
                const char *path = view->closure->items[i].path;
                r = pf_plan_add_bytes(b, path, strlen(path));
                if (r >= 0)
                        r = pf_plan_add_bytes(b, "\n", 1);
        }
        if (r < 0) {
                pf_plan_builder_free(b);
                return r;
        }
        return pf_plan_builder_finish(b, NULL, NULL, NULL, ret);
}

const pf_format pf_format_closure = {
        .file_name = "closure",
        .plan = closure_plan,
};
