/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * oci/: the image of docker.tar as an OCI image layout, for `skopeo copy oci:`
 * to any registry, and for containerd's and podman's importers:
 *
 *   oci-layout                  {"imageLayoutVersion":"1.0.0"}
 *   index.json                  the manifest, named "latest" and by its
 *                               containerd image name
 *   blobs/sha256/<digest>       each layer (uncompressed: its digest is its
 *                               diff_id), the config, the manifest
 *
 * A layer blob is a slice of docker.tar's plan (the same bytes, read from the
 * store), the small JSON files are bytes of their own. Making the tree needs
 * the layer digests: from the cache, or computed once by reading the layers.
 */
#include <errno.h>
#include <gcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "packfs/cache.h"
#include "packfs/format.h"
#include "packfs/log.h"
#include "packfs/macro.h"
#include "packfs/tree.h"

#define MEDIA_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_CONFIG "application/vnd.oci.image.config.v1+json"
#define MEDIA_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MEDIA_INDEX "application/vnd.oci.image.index.v1+json"

/* A plan of LEN literal bytes. */
static int bytes_plan(const void *data, size_t len, pf_plan **ret) {
        pf_plan_builder *b = NULL;
        int r = pf_plan_builder_new(&b);

        if (r >= 0)
                r = pf_plan_add_bytes(b, data, len);
        if (r < 0) {
                pf_plan_builder_free(b);
                return r;
        }
        return pf_plan_builder_finish(b, NULL, NULL, NULL, ret);
}

/* Adds blobs/sha256/<digest of DATA> holding DATA; *RET_DIGEST gets the digest. */
static int add_json_blob(pf_tree *tree, const char *data, size_t len, uint8_t digest[32]) {
        char path[96], h[65];
        pf_plan *plan = NULL;
        int r;

        gcry_md_hash_buffer(GCRY_MD_SHA256, digest, data, len);
        pf_hex(digest, 32, h);
        snprintf(path, sizeof(path), "blobs/sha256/%s", h);
        r = bytes_plan(data, len, &plan);
        return r < 0 ? r : pf_tree_add(tree, path, plan);
}

static void tree_free(void *p) {
        pf_tree_free(p);
}

static int build(pf_plan *docker, pf_tree *tree) {
        docker_image image = {};
        _cleanup_free_ char *manifest = NULL, *index = NULL, *layers = NULL, *name = NULL;
        size_t layers_len = 0;
        FILE *f = NULL;
        uint8_t digest[32];
        char h[65], path[96];
        int r;

        r = docker_image_of(docker, &image);
        if (r < 0)
                return r;
        f = open_memstream(&layers, &layers_len);
        if (!f) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < image.n_layers; i++) {
                docker_image_layer *l = &image.layers[i];
                pf_plan *blob = NULL;

                pf_hex(l->digest, 32, h);
                fprintf(f, "%s{\"mediaType\":\"" MEDIA_LAYER "\",\"digest\":\"sha256:%s\",\"size\":%llu}",
                        i ? "," : "", h, (unsigned long long) l->length);
                snprintf(path, sizeof(path), "blobs/sha256/%s", h);
                r = pf_plan_slice(docker, l->offset, l->length, &blob);
                if (r >= 0)
                        r = pf_tree_add(tree, path, blob);
                if (r == -EEXIST)
                        r = 0; /* two layers with the same bytes: one blob */
                if (r < 0)
                        goto out;
        }
        if (fclose(f) != 0) {
                f = NULL;
                r = -ENOMEM;
                goto out;
        }
        f = NULL;

        r = add_json_blob(tree, (const char *) image.config, image.config_size, image.config_digest);
        if (r < 0)
                goto out;
        pf_hex(image.config_digest, 32, h);
        if (asprintf(&manifest,
                     "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_MANIFEST "\","
                     "\"config\":{\"mediaType\":\"" MEDIA_CONFIG "\",\"digest\":\"sha256:%s\",\"size\":%zu},"
                     "\"layers\":[%s]}",
                     h, image.config_size, layers) < 0) {
                manifest = NULL;
                r = -ENOMEM;
                goto out;
        }
        r = add_json_blob(tree, manifest, strlen(manifest), digest);
        if (r < 0)
                goto out;
        /* containerd names the image "docker.io/library/NAME:TAG" as docker does. */
        const char *repo = image.repo_tag;
        if (asprintf(&name, "%s%s", strchr(repo, '/') && strchr(repo, '/') < strchr(repo, ':') ? "docker.io/" :
                                                                                               "docker.io/library/",
                     repo) < 0) {
                name = NULL;
                r = -ENOMEM;
                goto out;
        }
        pf_hex(digest, 32, h);
        if (asprintf(&index,
                     "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_INDEX "\",\"manifests\":[{\"mediaType\":\"" MEDIA_MANIFEST
                     "\",\"digest\":\"sha256:%s\",\"size\":%zu,\"annotations\":{\"io.containerd.image.name\":\"%s\","
                     "\"org.opencontainers.image.ref.name\":\"latest\"}}]}\n",
                     h, strlen(manifest), name) < 0) {
                index = NULL;
                r = -ENOMEM;
                goto out;
        }
        pf_plan *plan = NULL;
        r = bytes_plan(index, strlen(index), &plan);
        if (r >= 0)
                r = pf_tree_add(tree, "index.json", plan);
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        plan = NULL;
        if (r >= 0)
                r = bytes_plan(layout, sizeof(layout) - 1, &plan);
        if (r >= 0)
                r = pf_tree_add(tree, "oci-layout", plan);
out:
        if (f)
                fclose(f);
        docker_image_done(&image);
        return r;
}

static int oci_plan(const pf_format *self, const pf_view *view, pf_plan **ret) {
        pf_plan *docker = NULL, *plan = NULL;
        pf_plan_builder *b = NULL;
        pf_tree *tree = NULL;
        int r;

        r = view->plan_of ? view->plan_of(view, &pf_format_docker, &docker)
                          : pf_format_docker.plan(&pf_format_docker, view, &docker);
        if (r >= 0)
                r = pf_tree_new(&tree);
        if (r >= 0)
                r = build(docker, tree);
        pf_plan_unref(docker); /* the blobs hold their own references */
        if (r >= 0)
                r = pf_plan_builder_new(&b);
        if (r < 0) {
                pf_tree_free(tree);
                return r;
        }
        pf_tree_freeze(tree);
        /* The directory's own plan: no bytes, the tree as its data. */
        r = pf_plan_builder_finish(b, NULL, tree, tree_free, &plan);
        if (r >= 0)
                *ret = plan;
        return r;
}

static const pf_tree *oci_tree(const pf_plan *plan) {
        return pf_plan_format_data(plan);
}

const pf_format pf_format_oci = {
        .file_name = "oci",
        .plan = oci_plan,
        .tree = oci_tree,
        .named = true,          /* index.json's image name (docker.tar's plan) */
};
