import time, sys, numpy as np, torch
torch.set_num_threads(2)
from engine.data import *
from engine.graph import *
from sklearn.decomposition import PCA
xtr,ytr,xte,yte=load_dataset('mnist')
X=np.concatenate([xtr,xte]).reshape(70000,-1).astype(np.float32)/255.
Y=np.concatenate([ytr,yte])
def run(feat,name,k=10):
    t=time.time(); idx,dist=knn(feat,k); W=knn_graph(idx,dist,k_scale=k); tg=time.time()-t
    for seed in [0,1,2]:
        lab=sample_labels(ytr,10,seed)
        for meth,f in [('poisson',poisson_learning),('laplace',laplace_learning),('spread',label_spreading)]:
            t=time.time(); u=f(W,lab,ytr[lab],10); tm=time.time()-t
            pred=u.argmax(1)
            print(f'{name} k={k} {meth} seed={seed} graph={tg:.1f}s prop={tm:.1f}s test={np.mean(pred[60000:]==yte):.4f} all={np.mean(pred==Y):.4f}',flush=True)
t=time.time(); P=PCA(50,random_state=0).fit_transform(X); print('pca',time.time()-t)
run(P,'pca50')
run(P,'pca50',k=20)
